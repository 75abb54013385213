"""The `vigil` command: db upgrade, users, workers, devices, broker files; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.devices.models import Device
from monitor.orgs.models import Worker
from monitor.security import verify_device_secret, verify_secret
from monitor.users.models import User


def test_db_upgrade(vigil) -> None:  # type: ignore[no-untyped-def]
    assert "up to date" in vigil("db", "upgrade").output


def test_worker_and_device(vigil) -> None:  # type: ignore[no-untyped-def]
    out = vigil(
        "worker",
        "add",
        "Sam Lee",
        "--phone",
        "+447700900123",
        "--team",
        "Housing",
        "--notes",
        "Diabetic",
        "--cancel-pin",
        "2468",
        "--duress-pin",
        "1357",
    ).output
    assert "worker 1 added: Sam Lee" in out
    out = vigil("device", "add", "badge-77", "--worker", "1", "--heartbeat", "120").output
    secret = out.splitlines()[1].strip()
    with vigil.store().session() as db:
        device = db.get(Device, "badge-77")
        assert device is not None and device.worker_id == 1
        assert device.heartbeat_interval_s == 120
        assert verify_device_secret(device.secret_hash, secret)
        assert secret not in device.secret_hash
        worker = db.scalar(select(Worker))
        assert worker is not None and worker.responder_notes == "Diabetic"
        assert verify_secret(worker.cancel_pin_hash, "2468")
        assert verify_secret(worker.duress_pin_hash, "1357")
        assert "2468" not in worker.cancel_pin_hash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "add", "X", "--cancel-pin", "12", "--duress-pin", "1357"], "cancel_pin"),
        (["worker", "add", "X", "--cancel-pin", "1357", "--duress-pin", "1357"], "must differ"),
        (["device", "add", "bad id!"], "device id must be"),
        (["device", "add", "badge-1", "--worker", "99"], "no worker 99"),
        (["user", "add", "amy", "--password", "short"], "at least 10"),
        (["user", "add", "amy", "--password", "long enough pw", "--role", "boss"], "role must be"),
        (
            ["user", "add", "amy", "--password", "long enough pw", "--org", "Nowhere"],
            "no organisation",
        ),
        (
            ["user", "add", "amy", "--password", "long enough pw", "--team", "Red"],
            "needs its organisation",
        ),
        (["mosquitto-config"], "VIGIL_MQTT_PASSWORD"),
    ],
)
def test_bad_input_is_a_clear_error_that_changes_nothing(vigil, args, message) -> None:  # type: ignore[no-untyped-def]
    vigil("db", "upgrade")
    result = vigil(*args, ok=False)
    assert message in result.output
    with vigil.store().session() as db:
        assert db.scalars(select(Worker)).all() == []
        assert db.scalars(select(Device)).all() == []
        assert db.scalars(select(User)).all() == []


def test_user_add(vigil) -> None:  # type: ignore[no-untyped-def]
    vigil("user", "add", "lead", "--role", "supervisor", "--password", "a good long one")
    with vigil.store().session() as db:
        user = db.scalar(select(User))
        assert user is not None and user.role == "supervisor"
        assert verify_secret(user.password_hash, "a good long one")
    vigil("user", "add", "lead", "--password", "a good long one", ok=False)


def test_user_limited_to_an_organisation_or_team(vigil) -> None:  # type: ignore[no-untyped-def]
    pins = ("--cancel-pin", "1357", "--duress-pin", "2468")
    vigil("worker", "add", "Sam", "--org", "North Council", "--team", "Housing", *pins)
    pw = ("--password", "a good long one")
    out = vigil("user", "add", "lead", "--org", "North Council", *pw).output
    assert "sees North Council" in out
    out = vigil("user", "add", "tl", "--org", "North Council", "--team", "Housing", *pw).output
    assert "sees team Housing of North Council" in out
    refused = vigil(
        "user", "add", "x", "--org", "North Council", "--team", "Nursing", *pw, ok=False
    )
    assert "no team 'Nursing' in North Council (known: Housing)" in refused.output
    with vigil.store().session() as db:
        users = {u.username: u for u in db.scalars(select(User))}
        assert set(users) == {"lead", "tl"}
        assert users["lead"].org_id is not None and users["lead"].team_id is None
        assert users["tl"].org_id == users["lead"].org_id and users["tl"].team_id is not None


def test_mosquitto_config_from_registry(
    vigil,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vigil("worker", "add", "Sam", "--cancel-pin", "2468", "--duress-pin", "1357")
    vigil("device", "add", "badge-1", "--worker", "1")
    vigil("device", "add", "badge-2", "--worker", "1")
    with vigil.store().begin() as db:
        off = db.get(Device, "badge-2")
        assert off is not None
        off.enabled = False
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "service-pw-123456")
    out_dir = tmp_path / "mq"
    vigil("mosquitto-config", "--out", str(out_dir), "--port", "18830")
    users = [line.split(":")[0] for line in (out_dir / "passwords").read_text().splitlines()]
    assert users == ["badge-1"]  # the disabled device is left out, and so is the service
    service = (out_dir / "service-passwords").read_text().splitlines()
    assert [line.split(":")[0] for line in service] == ["vigil-service"]
    acl = (out_dir / "acl").read_text()
    assert "pattern write vigil/v1/%u/alert\n" in acl and "pattern read vigil/v1/%u/cmd" in acl
    assert "pattern write vigil/v1/%u/alert/cancel\n" in acl and "%u/#" not in acl
    # A device named like the service account would get nothing more on the devices' listener.
    assert "user " not in acl
    service_acl = (out_dir / "service-acl").read_text()
    assert "user vigil-service\ntopic readwrite vigil/v1/#" in service_acl
    conf = (out_dir / "mosquitto.conf").read_text()
    for line in (
        "per_listener_settings true",
        "listener 18830 0.0.0.0\nuse_username_as_clientid true\nallow_anonymous false\n",
        "listener 1884 127.0.0.1\nallow_anonymous false\n",
        "persistence true",
        "max_queued_messages 1000000",
        "message_size_limit 65536",
    ):
        assert line in conf
    for name in ("passwords", "service-passwords", "acl", "service-acl", "mosquitto.conf"):
        assert oct((out_dir / name).stat().st_mode & 0o777) == "0o600"
    same = vigil("mosquitto-config", "--out", str(out_dir), "--service-port", "1883", ok=False)
    assert "must be different ports" in same.output


def test_seed_demo_writes_credentials(vigil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    creds_file = tmp_path / "fleet.json"
    vigil("device", "seed-demo", "--count", "3", "--credentials", str(creds_file))
    creds = json.loads(creds_file.read_text())
    assert [c["device_id"] for c in creds] == ["demo-badge-001", "demo-badge-002", "demo-badge-003"]
    with vigil.store().session() as db:
        for c in creds:
            device = db.get(Device, c["device_id"])
            assert device is not None and verify_device_secret(device.secret_hash, c["secret"])


def test_disable_enable_and_rotate(
    vigil,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vigil("worker", "add", "Sam", "--cancel-pin", "2468", "--duress-pin", "1357")
    old = vigil("device", "add", "badge-9", "--worker", "1").output.splitlines()[1].strip()

    vigil("device", "disable", "badge-9")
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "service-pw-123456")
    vigil("mosquitto-config", "--out", str(tmp_path / "mq"))
    assert "badge-9:" not in (tmp_path / "mq" / "passwords").read_text()
    vigil("device", "enable", "badge-9")
    vigil("mosquitto-config", "--out", str(tmp_path / "mq"))
    assert "badge-9:" in (tmp_path / "mq" / "passwords").read_text()

    new = vigil("device", "rotate", "badge-9").output.splitlines()[1].strip()
    assert new != old
    with vigil.store().session() as db:
        device = db.get(Device, "badge-9")
        assert device is not None and device.enabled
        assert verify_device_secret(device.secret_hash, new)
        assert not verify_device_secret(device.secret_hash, old)

    for verb in ("disable", "enable", "rotate"):
        assert "no device nope" in vigil("device", verb, "nope", ok=False).output


def test_disabling_or_rotating_takes_effect_at_the_broker(  # type: ignore[no-untyped-def]
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device_sim.device import BrokerRefusedError, SimDevice
    from monitor.broker import MosquittoProcess, free_port
    from tests.support import wait_until

    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "service-pw-123456")
    vigil("worker", "add", "Ola", "--cancel-pin", "2468", "--duress-pin", "1357")
    secret = vigil("device", "add", "badge-b1", "--worker", "1").output.splitlines()[1].strip()
    port = free_port()
    out = tmp_path / "mq"
    ports = ("--port", str(port), "--service-port", str(free_port()), "--bind", "127.0.0.1")
    vigil("mosquitto-config", "--out", str(out), *ports)
    mosquitto = MosquittoProcess(out / "mosquitto.conf", port)
    mosquitto.start()
    assert mosquitto.proc is not None
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{mosquitto.proc.pid}\n")

    def connects(password: str) -> bool:
        d = SimDevice("badge-b1", password, port=port)
        try:
            d.connect(timeout=5)
        except (BrokerRefusedError, ConnectionRefusedError):
            return False
        d.disconnect()
        return True

    def reload() -> None:
        args = ("mosquitto-config", "--out", str(out), *ports, "--pid-file", str(pid_file))
        assert "sent SIGHUP" in vigil(*args).output

    try:
        assert connects(secret)
        vigil("device", "disable", "badge-b1")
        reload()
        wait_until(lambda: not connects(secret), timeout=10, what="the disabled badge refused")
        vigil("device", "enable", "badge-b1")
        new = vigil("device", "rotate", "badge-b1").output.splitlines()[1].strip()
        reload()
        wait_until(lambda: connects(new), timeout=10, what="the new secret accepted")
        assert not connects(secret)
    finally:
        mosquitto.stop()
    missing = vigil(
        "mosquitto-config", "--out", str(out), "--pid-file", str(tmp_path / "no"), ok=False
    )
    assert "cannot read a process id" in missing.output
