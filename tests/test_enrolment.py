"""Enrolling the worker app, and device credentials taking effect at the broker at once:
`vigil device enrol` prints a one-time link that redeems once for a secret the real broker
takes at once; enrolling again, `vigil device disable` and `vigil device add` change what the
broker lets in while the service runs, with nothing restarted."""

from __future__ import annotations

import hashlib
import io
import queue
import re
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import segno
import zxingcpp
from PIL import Image
from sqlalchemy import select, update

from monitor.audit.models import AuditEntry
from monitor.db import utcnow
from monitor.demo import seed
from monitor.devices.models import Device
from monitor.security import verify_device_secret
from monitor.users.models import Role
from tests.support import Broker, Running, add_badge, running, service_settings, wait_until
from worker_app.models import AppEnrolment

LINK = re.compile(r"(http://\S+/app/#enrol=(\S+))")


def synced(tmp_path: Path, db_url: str, brk: Broker, how: str = "pid file") -> Any:
    """A running service that keeps `brk`'s password file in step with the registry, and
    tells the broker through its pid file or a reload command."""
    assert brk.process is not None and brk.process.proc is not None
    pid = brk.process.proc.pid
    told: dict[str, Any] = {"broker_reload_command": f"kill -HUP {pid}"}
    if how == "pid file":
        told = {"broker_pid_file": brk.dir / "mosquitto.pid"}
        told["broker_pid_file"].write_text(f"{pid}\n")
    settings = service_settings(tmp_path / "data", db_url, brk, broker_dir=brk.dir, **told)
    return running(settings, brk)


def connack(brk: Broker, device_id: str, secret: str) -> mqtt.ReasonCode:
    """What the broker's devices' listener answers this device's CONNECT."""
    got: queue.Queue[mqtt.ReasonCode] = queue.Queue()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(device_id, secret)
    client.on_connect = lambda c, u, flags, rc, props: got.put(rc)
    client.connect(brk.host, brk.port)
    client.loop_start()
    try:
        return got.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def let_in(brk: Broker, device_id: str, secret: str) -> None:
    # The broker re-reads its files a moment after SIGHUP: no restart, but not in no time.
    wait_until(
        lambda: not connack(brk, device_id, secret).is_failure,
        what=f"the broker to let {device_id} in",
    )


def kept_out(brk: Broker, device_id: str, secret: str) -> None:
    wait_until(
        lambda: connack(brk, device_id, secret).is_failure,
        what=f"the broker to refuse {device_id}",
    )


class Phone:
    """An enrolled app's connection that stays open, to see the broker end it."""

    def __init__(self, brk: Broker, device_id: str, secret: str) -> None:
        self.events: queue.Queue[str] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(device_id, secret)
        self.client.on_connect = lambda c, u, f, rc, p: self.events.put(f"connect {rc}")
        self.client.on_disconnect = lambda c, u, f, rc, p: self.events.put("disconnect")
        self.client.connect(brk.host, brk.port)
        self.client.loop_start()
        assert self.events.get(timeout=10) == "connect Success"

    def wait_disconnected(self) -> None:
        while self.events.get(timeout=15) != "disconnect":
            pass

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def enrol_cli(vigil: Any, worker: int, *args: str) -> tuple[str, str, str]:
    """`vigil device enrol`: its output, link and code."""
    out = vigil("device", "enrol", str(worker), *args).output
    m = LINK.search(out)
    assert m, out
    return out, m[1], m[2]


def add_worker(vigil: Any, name: str = "Sam Lee") -> int:
    out = vigil("worker", "add", name, "--cancel-pin", "2468", "--duress-pin", "1357").output
    return int(re.search(r"worker (\d+) added", out)[1])  # type: ignore[index]


def actions(svc: Running, *names: str) -> list[AuditEntry]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AuditEntry).where(AuditEntry.action.in_(names)).order_by(AuditEntry.id)
            )
        )


def test_a_link_redeems_once_for_a_secret_the_broker_takes_at_once(
    vigil: Any,
    tmp_path: Path,
    db_url: str,
    own_broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", db_url)
    svg, png = tmp_path / "qr.svg", tmp_path / "qr.png"
    with synced(tmp_path, db_url, own_broker) as svc:
        worker = add_worker(vigil)
        out, link, code = enrol_cli(vigil, worker, "--svg", str(svg), "--png", str(png))
        assert link.startswith(f"{svc.settings.public_url}/app/#enrol=")
        # The QR codes: in the terminal, and files a phone's camera reads as the link.
        terminal = io.StringIO()
        segno.make(link).terminal(out=terminal, compact=True)
        assert terminal.getvalue() in out
        assert [r.text for r in zxingcpp.read_barcodes(Image.open(png))] == [link]
        made = io.BytesIO()
        segno.make(link).save(made, kind="svg", scale=8)
        assert svg.read_bytes() == made.getvalue()

        # Only the code's hash is kept, and the device's secret does not exist yet.
        with svc.store.session() as db:
            row = db.scalar(select(AppEnrolment))
            assert row is not None and row.worker_id == worker and row.redeemed_at is None
            assert row.code_hash == hashlib.sha256(code.replace("-", "").encode()).hexdigest()
            device = db.get(Device, row.device_id)
            assert device is not None and device.kind == "phone" and device.enabled

        r = svc.http.post("/api/v1/app/enrol", json={"code": code})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"  # the device's secret
        got = r.json()
        assert set(got) == {
            "device_id",
            "secret",
            "mqtt_url",
            "worker_name",
            "heartbeat_s",
            "centre_phone",
        }
        assert got["device_id"] == row.device_id and got["worker_name"] == "Sam Lee"
        with svc.store.session() as db:
            device = db.get(Device, got["device_id"])
            assert device is not None and verify_device_secret(device.secret_hash, got["secret"])
        # The broker lets the app in, with nothing restarted.
        let_in(own_broker, got["device_id"], got["secret"])

        again = svc.http.post("/api/v1/app/enrol", json={"code": code})
        assert again.status_code == 410 and "used" in again.json()["detail"]

        issued = actions(svc, "app_enrolment_issued")
        assert [(e.actor, e.target, e.details["worker"]) for e in issued] == [
            ("cli", row.device_id, worker)
        ]
        redeemed = actions(svc, "app_enrolment_redeemed")
        assert [(e.target, e.address) for e in redeemed] == [(row.device_id, "testclient")]
        refused = actions(svc, "app_enrolment_refused")
        assert [(e.address, e.details["why"]) for e in refused] == [
            ("testclient", "this enrolment code has already been used")
        ]
        for entry in issued + redeemed + refused:
            assert code.replace("-", "") not in str(entry.details) + entry.target


def test_expired_unknown_and_too_many_codes_are_refused(svc: Running) -> None:
    worker = add_badge(svc.store, "enrol-badge").worker_id
    sup = svc.user("sup", Role.SUPERVISOR)
    issued = svc.http.post(f"/api/v1/workers/{worker}/enrolments", headers=sup)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    code = body["link"].split("#enrol=")[1]
    assert body["qr_svg"].startswith("<svg") and body["device_id"].startswith("app-")
    assert [e.actor for e in actions(svc, "app_enrolment_issued")] == ["user:sup"]

    with svc.store.begin() as db:
        db.execute(update(AppEnrolment).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = svc.http.post("/api/v1/app/enrol", json={"code": code})
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    for wrong in ("AAAA-AAAA-AAAA-AAAA", "not a code"):
        unknown = svc.http.post("/api/v1/app/enrol", json={"code": wrong})
        assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown enrolment code"
    # Refused codes from one address are limited as wrong passwords are.
    statuses = [
        svc.http.post("/api/v1/app/enrol", json={"code": "BBBB-BBBB-BBBB-BBBB"}).status_code
        for _ in range(svc.settings.signin_max_failures)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) <= {404, 429}
    assert actions(svc, "app_enrolment_throttled")

    # A supervisor of another organisation does not see the worker; an operator may not.
    add_badge(svc.store, "other-org-badge", org="Other Org")
    other = svc.user("other-sup", Role.SUPERVISOR, org="Other Org")
    assert svc.http.post(f"/api/v1/workers/{worker}/enrolments", headers=other).status_code == 404
    op = svc.user("op", Role.OPERATOR)
    assert svc.http.post(f"/api/v1/workers/{worker}/enrolments", headers=op).status_code == 403
    config = svc.http.get("/app/config.json").json()
    assert set(config) == {"mqtt_url", "centre_phone", "vapid_public_key"}
    assert (config["mqtt_url"], config["centre_phone"]) == ("", "")


def test_enrolling_again_revokes_the_first_phone_at_the_broker(
    vigil: Any, tmp_path: Path, own_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    with synced(tmp_path, db_url, own_broker) as svc:
        worker = add_worker(vigil)
        _, _, code = enrol_cli(vigil, worker)
        first = svc.http.post("/api/v1/app/enrol", json={"code": code}).json()
        let_in(own_broker, first["device_id"], first["secret"])
        phone = Phone(own_broker, first["device_id"], first["secret"])
        try:
            out, _, code2 = enrol_cli(vigil, worker)
            assert f"revoked their earlier app devices: {first['device_id']}" in out
            # Mosquitto ends the connection of a device whose password went on reload, and
            # refuses it from then on.
            phone.wait_disconnected()
        finally:
            phone.close()
        kept_out(own_broker, first["device_id"], first["secret"])
        second = svc.http.post("/api/v1/app/enrol", json={"code": code2}).json()
        let_in(own_broker, second["device_id"], second["secret"])
        with svc.store.session() as db:
            old = db.get(Device, first["device_id"])
            assert old is not None and not old.enabled
        why = [e.details.get("why") for e in actions(svc, "device_disabled")]
        assert why == ["enrolled again"]


@pytest.mark.parametrize("how", ["pid file", "reload command"])
def test_device_add_disable_enable_rotate_apply_at_the_broker_at_once(
    vigil: Any, tmp_path: Path, own_broker: Broker, how: str
) -> None:
    """Today's CLI changes made in another process, taken by the running service."""
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    with synced(tmp_path, db_url, own_broker, how) as svc:
        secret = vigil("device", "add", "cli-badge").output.splitlines()[1].strip()
        let_in(own_broker, "cli-badge", secret)
        vigil("device", "disable", "cli-badge")
        kept_out(own_broker, "cli-badge", secret)
        vigil("device", "enable", "cli-badge")
        let_in(own_broker, "cli-badge", secret)
        new = vigil("device", "rotate", "cli-badge").output.splitlines()[1].strip()
        kept_out(own_broker, "cli-badge", secret)
        let_in(own_broker, "cli-badge", new)
        # Nothing changed since: the file is not written again, the broker not signalled.
        sync = svc.service.app.state.broker_sync
        assert sync is not None and sync.check() is False


def test_the_demo_offers_an_enrolment_link_for_its_first_worker(svc: Running) -> None:
    with svc.store.begin() as db:
        seed(db, 2)
    (hook,) = [ep.load() for ep in entry_points(group="vigil.demo")]
    text = hook(svc.store, svc.settings)
    m = LINK.search(text)
    assert m and "Amira Khan" in text
    r = svc.http.post("/api/v1/app/enrol", json={"code": m[2]})
    assert r.status_code == 200 and r.json()["worker_name"] == "Amira Khan"
