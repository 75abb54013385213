"""Devices administered through the API (the console's Admin tab) and `vigil device`: every
kind listed within the caller's scope, a device added for a worker with its secret shown once
and never again (not in the list, not in the audit log), refusals that change nothing, and a
disabled device or an old secret turned away by a real Mosquitto with nothing restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateways.line_workers import ensure_device
from monitor.alerts.models import Alert
from monitor.audit.models import AuditEntry
from monitor.devices.models import Device
from monitor.devices.trackers import split_identifier
from monitor.ingest.models import RefusedMessage
from monitor.orgs import service as orgs
from monitor.security import verify_device_secret
from monitor.users.models import Role
from tests.fast.handlers import Handlers, fast_settings
from tests.support import Broker, wait_until
from tests.test_enrolment import Phone, kept_out, let_in

HOUSING, NURSING = "Housing", "Nursing"


def worker(svc: Handlers, name: str, team: str = HOUSING, org: str = "Test Org") -> int:
    with svc.store.begin() as db:
        return orgs.add_worker(
            db,
            name=name,
            cancel_pin="1234",
            duress_pin="9876",
            team=team,
            org_name=org,
        ).id


def audit_text(svc: Handlers) -> str:
    with svc.store.session() as db:
        return json.dumps(
            [[e.actor, e.action, e.target, e.details] for e in db.scalars(select(AuditEntry))]
        )


def device_count(svc: Handlers) -> int:
    with svc.store.session() as db:
        return int(db.scalar(select(func.count()).select_from(Device)) or 0)


def test_added_with_its_secret_shown_once_and_never_again(svc: Handlers) -> None:
    admin = svc.user("ad", Role.ADMIN)
    sam = worker(svc, "Sam Lee")
    r = svc.http.post(
        "/api/v1/devices",
        json={"id": "badge-sam", "worker_id": sam, "kind": "badge", "heartbeat_interval_s": 120},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    secret = body["credential"]["secret"]
    assert body["device"] == body["device"] | {
        "id": "badge-sam",
        "worker_id": sam,
        "worker_name": "Sam Lee",
        "kind": "badge",
        "enabled": True,
        "heartbeat_interval_s": 120,
    }
    assert body["credential"]["identifier"] is None
    with svc.store.session() as db:
        device = db.get(Device, "badge-sam")
        assert device is not None and verify_device_secret(device.secret_hash, secret)

    # A tracker: its identifier (device id and secret) and Traccar Client's set-up link.
    r = svc.http.post(
        "/api/v1/devices", json={"id": "trk-sam", "worker_id": sam, "kind": "osmand"}, headers=admin
    )
    cred = r.json()["credential"]
    assert split_identifier(cred["identifier"]) == ("trk-sam", cred["secret"])
    assert cred["setup_link"] == f"{cred['server_url']}?id={cred['identifier']}"
    assert cred["server_url"].endswith("/osmand")

    listed = svc.http.get("/api/v1/devices", headers=admin)
    assert [d["id"] for d in listed.json()] == ["badge-sam", "trk-sam"]
    for text in (listed.text, audit_text(svc)):
        assert secret not in text and cred["secret"] not in text
        assert "secret_hash" not in text
    # The new secret again, once, and only that one works.
    r = svc.http.post("/api/v1/devices/badge-sam/rotate", headers=admin)
    new = r.json()["credential"]["secret"]
    assert r.status_code == 200 and new != secret and r.headers["cache-control"] == "no-store"
    with svc.store.session() as db:
        device = db.get(Device, "badge-sam")
        assert device is not None and verify_device_secret(device.secret_hash, new)
        assert not verify_device_secret(device.secret_hash, secret)
    assert new not in svc.http.get("/api/v1/devices", headers=admin).text
    assert new not in audit_text(svc)
    with svc.store.session() as db:
        trail = [
            (e.actor, e.action, e.target, e.details.get("kind"))
            for e in db.scalars(select(AuditEntry).where(AuditEntry.action.like("device_%")))
        ]
    assert trail == [
        ("user:ad", "device_added", "badge-sam", "badge"),
        ("user:ad", "device_added", "trk-sam", "osmand"),
        ("user:ad", "device_secret_rotated", "badge-sam", None),
    ]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"id": "has space"}, 422, "device id must be 1 to 64 characters"),
        ({"id": "x" * 65}, 422, "device id must be 1 to 64 characters"),
        ({"id": "ok-1", "kind": "pager"}, 422, "kind must be badge, phone, osmand or owntracks"),
        ({"id": "ok-1", "kind": "line"}, 422, "kind must be"),
        ({"id": "ok-1", "heartbeat_interval_s": 5}, 422, "at least 10 s"),
        ({"id": "ok-1", "worker_id": 999999}, 422, "no worker 999999"),
        ({"id": "taken"}, 409, "device taken already exists"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(
    svc: Handlers, body: dict[str, Any], status: int, reason: str
) -> None:
    admin = svc.user("ad", Role.ADMIN)
    sam = worker(svc, "Sam Lee")
    svc.http.post("/api/v1/devices", json={"id": "taken", "worker_id": sam}, headers=admin)
    before, trail = device_count(svc), audit_text(svc)
    r = svc.http.post("/api/v1/devices", json={"worker_id": sam} | body, headers=admin)
    assert r.status_code == status and reason in r.json()["detail"], r.text
    assert device_count(svc) == before and audit_text(svc) == trail


def test_a_team_supervisor_administers_only_their_teams_devices(svc: Handlers) -> None:
    mine, theirs = worker(svc, "Ann", HOUSING), worker(svc, "Bo", NURSING)
    other_org = worker(svc, "Cy", HOUSING, org="Other Org")
    admin = svc.user("ad", Role.ADMIN)
    for device_id, w in (("b-ann", mine), ("b-bo", theirs), ("b-cy", other_org), ("b-none", None)):
        r = svc.http.post("/api/v1/devices", json={"id": device_id, "worker_id": w}, headers=admin)
        assert r.status_code == 201, r.text
    lead = svc.user("lead", Role.SUPERVISOR, org="Test Org", team=HOUSING)
    org_lead = svc.user("orglead", Role.SUPERVISOR, org="Test Org")
    operator = svc.user("op", Role.OPERATOR)

    def ids(headers: dict[str, str], query: str = "") -> list[str]:
        return [d["id"] for d in svc.http.get(f"/api/v1/devices{query}", headers=headers).json()]

    assert ids(admin) == ["b-ann", "b-bo", "b-cy", "b-none"]
    assert ids(org_lead) == ["b-ann", "b-bo"]
    assert ids(lead) == ["b-ann"]
    assert ids(admin, f"?worker_id={theirs}") == ["b-bo"]
    assert ids(lead, f"?worker_id={theirs}") == []
    trail = audit_text(svc)
    # Another team's device is no device of theirs; a worker of another team no worker.
    for path in ("b-bo/disable", "b-bo/rotate", "b-cy/enable", "b-none/disable"):
        r = svc.http.post(f"/api/v1/devices/{path}", headers=lead)
        assert r.status_code == 404 and r.json()["detail"].startswith("no device b-"), path
    r = svc.http.post("/api/v1/devices", json={"id": "b-2", "worker_id": theirs}, headers=lead)
    assert r.status_code == 422 and r.json()["detail"] == f"no worker {theirs}"
    r = svc.http.post("/api/v1/devices", json={"id": "b-2"}, headers=lead)
    assert r.status_code == 422 and r.json()["detail"] == "choose the worker who carries it"
    assert audit_text(svc) == trail
    # Operators administer no device.
    for method, path in (("GET", ""), ("POST", "/b-ann/disable"), ("POST", "/b-ann/rotate")):
        assert (
            svc.http.request(method, f"/api/v1/devices{path}", headers=operator).status_code == 403
        )
    # Their own team's: yes, and audited as theirs.
    r = svc.http.post("/api/v1/devices/b-ann/disable", headers=lead)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = svc.http.post("/api/v1/devices", json={"id": "b-3", "worker_id": mine}, headers=lead)
    assert r.status_code == 201
    with svc.store.session() as db:
        last = list(db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(2)))
    assert [(e.actor, e.action, e.target) for e in last] == [
        ("user:lead", "device_added", "b-3"),
        ("user:lead", "device_disabled", "b-ann"),
    ]


def test_the_list_has_every_kind_and_filters_by_kind(svc: Handlers) -> None:
    admin = svc.user("ad", Role.ADMIN)
    sam = worker(svc, "Sam Lee")
    for device_id, kind in (
        ("k-b", "badge"),
        ("k-p", "phone"),
        ("k-o", "osmand"),
        ("k-t", "owntracks"),
    ):
        svc.http.post(
            "/api/v1/devices", json={"id": device_id, "worker_id": sam, "kind": kind}, headers=admin
        )
    with svc.store.begin() as db:
        line = ensure_device(db, sam)
    kinds = {d["id"]: d["kind"] for d in svc.http.get("/api/v1/devices", headers=admin).json()}
    assert kinds == {
        "k-b": "badge",
        "k-p": "phone",
        "k-o": "osmand",
        "k-t": "owntracks",
        line: "line",
    }
    r = svc.http.get("/api/v1/devices?kind=owntracks", headers=admin)
    assert [d["id"] for d in r.json()] == ["k-t"]
    r = svc.http.get("/api/v1/devices?kind=pager", headers=admin)
    assert r.status_code == 422 and "kind must be one of" in r.json()["detail"]
    r = svc.http.post(f"/api/v1/devices/{line}/rotate", headers=admin)
    assert r.status_code == 422 and "no secret to rotate" in r.json()["detail"]


@pytest.fixture
def synced_svc(db_url: str, tmp_path: Path, own_broker: Broker) -> Iterator[Handlers]:
    """The fast tier's service keeping `own_broker`'s password file, as `vigil demo` does."""
    assert own_broker.process is not None and own_broker.process.proc is not None
    pid_file = own_broker.dir / "mosquitto.pid"
    pid_file.write_text(f"{own_broker.process.proc.pid}\n")
    settings = fast_settings(
        tmp_path / "data", db_url, broker_dir=own_broker.dir, broker_pid_file=pid_file
    )
    hub = Handlers(settings)
    try:
        hub.start()
        yield hub
    finally:
        hub.close()


def test_disable_and_rotate_take_effect_at_a_real_broker_at_once(
    synced_svc: Handlers, own_broker: Broker
) -> None:
    svc = synced_svc
    admin = svc.user("ad", Role.ADMIN)
    sam = worker(svc, "Sam Lee")
    r = svc.http.post("/api/v1/devices", json={"id": "live-1", "worker_id": sam}, headers=admin)
    secret = r.json()["credential"]["secret"]
    let_in(own_broker, "live-1", secret)
    badge = Phone(own_broker, "live-1", secret)
    try:
        assert svc.http.post("/api/v1/devices/live-1/disable", headers=admin).status_code == 200
        # The broker closes its connection, and the service refuses its next message.
        badge.wait_disconnected()
    finally:
        badge.close()
    kept_out(own_broker, "live-1", secret)
    svc.device("live-1").raise_alert()

    def refused() -> list[str]:
        with svc.store.session() as db:
            query = select(RefusedMessage.reason).where(RefusedMessage.device_id == "live-1")
            return list(db.scalars(query))

    assert wait_until(refused, what="the refusal recorded") == ["device is disabled"]
    with svc.store.session() as db:
        assert db.scalar(select(func.count()).select_from(Alert)) == 0

    assert svc.http.post("/api/v1/devices/live-1/enable", headers=admin).status_code == 200
    let_in(own_broker, "live-1", secret)
    new = svc.http.post("/api/v1/devices/live-1/rotate", headers=admin).json()["credential"][
        "secret"
    ]
    kept_out(own_broker, "live-1", secret)
    let_in(own_broker, "live-1", new)


def test_a_supervisor_enrols_a_phone_of_their_team_with_its_qr_code(svc: Handlers) -> None:
    mine, theirs = worker(svc, "Ann", HOUSING), worker(svc, "Bo", NURSING)
    lead = svc.user("lead", Role.SUPERVISOR, org="Test Org", team=HOUSING)
    r = svc.http.post(f"/api/v1/workers/{mine}/enrolments", headers=lead)
    assert r.status_code == 201 and r.json()["qr_svg"].startswith("<svg")
    assert "#enrol=" in r.json()["link"]
    assert r.headers["cache-control"] == "no-store"  # a one-time code: kept by no cache
    app_device = r.json()["device_id"]
    listed = svc.http.get(f"/api/v1/devices?worker_id={mine}&kind=phone", headers=lead).json()
    assert [d["id"] for d in listed] == [app_device]
    r = svc.http.post(f"/api/v1/workers/{theirs}/enrolments", headers=lead)
    assert r.status_code == 404


# The command line: the same rules, the same list.


def test_vigil_device_list_shows_every_kind_with_filters(vigil: Any) -> None:
    out = vigil("worker", "add", "Sam Lee", "--cancel-pin", "2468", "--duress-pin", "1357").output
    assert "worker 1 added" in out
    for device_id, kind in (
        ("k-b", "badge"),
        ("k-p", "phone"),
        ("k-o", "osmand"),
        ("k-t", "owntracks"),
    ):
        vigil("device", "add", device_id, "--worker", "1", "--kind", kind)
    vigil("device", "add", "spare")
    store = vigil.store()
    with store.begin() as db:
        line = ensure_device(db, 1)
    store.dispose()
    vigil("device", "disable", "k-o")
    lines = vigil("device", "list").output.splitlines()
    assert lines[0].split() == [
        "ID",
        "KIND",
        "WORKER",
        "STATE",
        "ONLINE",
        "LAST",
        "SEEN",
        "BATTERY",
    ]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert set(rows) == {"k-b", "k-p", "k-o", "k-t", line, "spare"}
    assert rows["k-o"][:6] == ["k-o", "osmand", "1", "Sam", "Lee", "disabled"]
    assert rows[line][1] == "line" and rows["spare"][2] == "-"
    only = vigil("device", "list", "--kind", "owntracks").output.splitlines()[1:]
    assert [ln.split()[0] for ln in only] == ["k-t"]
    mine = vigil("device", "list", "--worker", "1", "--json").output.splitlines()
    assert sorted(json.loads(x)["id"] for x in mine) == sorted(["k-b", "k-p", "k-o", "k-t", line])
    refused = vigil("device", "list", "--kind", "pager", ok=False)
    assert "kind must be one of badge, phone, osmand, owntracks, line" in refused.output
    # No secret in what the list says.
    assert "secret" not in vigil("device", "list", "--json").output


def test_vigil_device_add_refuses_as_the_api_does(vigil: Any) -> None:
    vigil("device", "add", "b-1")
    for args, reason in (
        (("b-1",), "device b-1 already exists"),
        (("b 2",), "device id must be"),
        (("b-3", "--kind", "pager"), "kind must be"),
        (("b-4", "--worker", "7"), "no worker 7"),
    ):
        assert reason in vigil("device", "add", *args, ok=False).output
    store = vigil.store()
    with store.session() as db:
        assert list(db.scalars(select(Device.id))) == ["b-1"]
        actions = list(db.scalars(select(AuditEntry.action)))
    store.dispose()
    assert actions == ["device_added"]


def _vigil(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `vigil` command in a process of its own, as a person runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ordinary_commands_start_quietly_unless_asked(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'quiet.db'}"
    # The first command on a new database migrates it, and says nothing of it.
    done = _vigil(tmp_path, "device", "add", "q-1", VIGIL_DATABASE_URL=db)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0]
        == "device q-1 added. Its secret (shown once, store it on the device):"
    )
    assert "alembic" not in done.stderr and "INFO" not in done.stderr, done.stderr
    listed = _vigil(tmp_path, "device", "list", VIGIL_DATABASE_URL=db)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert listed.stdout.splitlines()[1].startswith("q-1 ")
    # Asked for: with -v, or VIGIL_LOG_LEVEL.
    loud = _vigil(
        tmp_path, "-v", "device", "list", VIGIL_DATABASE_URL=f"sqlite:///{tmp_path / 'new.db'}"
    )
    assert "Running upgrade" in loud.stderr
    info = _vigil(tmp_path, "device", "list", VIGIL_DATABASE_URL=db, VIGIL_LOG_LEVEL="INFO")
    assert "alembic.runtime.migration" in info.stderr
    bad = _vigil(tmp_path, "device", "list", VIGIL_DATABASE_URL=db, VIGIL_LOG_LEVEL="LOUD")
    assert bad.returncode != 0 and "log_level" in bad.stderr.lower()
