"""Organisations and teams: an account limited to one sees nothing of the others, on any
route or on the websocket, and cannot act on what it cannot see."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.alerts.models import Alert, AlertEvent
from monitor.devices.models import LocationFix
from monitor.users.models import Role
from tests.escalation_support import load
from tests.fast.handlers import FastDevice as SimDevice
from tests.fast.handlers import Handlers as Running
from tests.support import Badge, bearer, console_socket, wait_until

DEFAULT_POLICY = Path(__file__).parents[2] / "escalation" / "default_policy.yaml"
AUDIO = b"OggS" + bytes(range(256)) * 8

NORTH, SOUTH = "North Council", "South Trust"


@dataclass(eq=False)
class Placed:
    device: SimDevice
    badge: Badge
    alert: int  # the stored alert's id


def _place(svc: Running, prefix: str, org: str, team: str) -> Placed:
    device, badge = svc.badge(prefix, org=org, team=team, name=f"{prefix} worker")
    device_alert = device.raise_alert(type="red")
    device.wait_for("alert_received", alert_id=device_alert, timeout=10)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    assert pk is not None
    return Placed(device, badge, pk)


@pytest.fixture
def fleet(svc: Running) -> dict[str, Placed]:
    """Three workers: two teams of one organisation and one team of another. Both Housing
    teams have backup staff in the default policy, so their alerts go to the outbox."""
    load(svc, DEFAULT_POLICY.read_text())
    return {
        "north-housing": _place(svc, "north-housing", NORTH, "Housing"),
        "north-nursing": _place(svc, "north-nursing", NORTH, "Community Nursing"),
        "south-housing": _place(svc, "south-housing", SOUTH, "Housing"),
    }


def _ids(svc: Running, url: str, who: dict[str, str], key: str = "id") -> set[Any]:
    r = svc.http.get(url, headers=who)
    assert r.status_code == 200, r.text
    return {row[key] for row in r.json()}


def test_each_account_sees_its_organisation_or_team(svc: Running, fleet: dict[str, Placed]) -> None:
    nh, nn, sh = fleet["north-housing"], fleet["north-nursing"], fleet["south-housing"]
    for placed in fleet.values():
        placed.device.start_visit(duration_s=3600, note="a home visit")
        placed.device.publish_raw("location", b"{not json", qos=1)
    centre = svc.user("centre", Role.SUPERVISOR)
    north = svc.user("north-lead", Role.SUPERVISOR, org=NORTH)
    team = svc.user("north-housing-lead", Role.SUPERVISOR, org=NORTH, team="Housing")
    wanted = {
        "centre": (centre, {nh, nn, sh}),
        "north": (north, {nh, nn}),
        "team": (team, {nh}),
    }
    all_devices = {p.badge.device_id for p in fleet.values()}
    wait_until(
        lambda: _ids(svc, "/api/v1/visits", centre, "device_id") >= all_devices,
        timeout=10,
        what="the three visits",
    )
    wait_until(
        lambda: _ids(svc, "/api/v1/refused?limit=1000", centre, "device_id") >= all_devices,
        timeout=10,
        what="the three refused messages",
    )
    wait_until(
        lambda: _ids(svc, "/api/v1/escalation/outbox", centre, "alert_id") >= {nh.alert, sh.alert},
        timeout=15,
        what="the Housing backups' SMS in the outbox",
    )
    for name, (who, seen) in wanted.items():
        alerts = _ids(svc, "/api/v1/alerts", who)
        assert alerts & {p.alert for p in fleet.values()} == {p.alert for p in seen}, name
        if name != "centre":
            # Nothing of earlier tests' organisations either: exactly their own.
            assert alerts == {p.alert for p in seen}, name
            assert _ids(svc, "/api/v1/alerts?state=all", who) == alerts, name
        devices = {p.badge.device_id for p in seen}
        workers = {p.badge.worker_id for p in seen}
        assert _ids(svc, "/api/v1/workers", who) & {p.badge.worker_id for p in fleet.values()} == (
            workers
        )
        assert _ids(svc, "/api/v1/devices", who, "id") & all_devices == devices, name
        assert _ids(svc, "/api/v1/visits", who, "device_id") & all_devices == devices, name
        refused = _ids(svc, "/api/v1/refused?limit=1000", who, "device_id")
        assert refused & all_devices == devices, name
        outbox = _ids(svc, "/api/v1/escalation/outbox", who, "alert_id")
        assert outbox & {nh.alert, sh.alert} == {p.alert for p in seen} & {nh.alert, sh.alert}
        if name != "centre":
            assert refused == devices and outbox <= alerts, name


def test_what_an_account_cannot_see_it_cannot_touch(svc: Running, fleet: dict[str, Placed]) -> None:
    south = fleet["south-housing"]
    north = svc.user("north-op", Role.ADMIN, org=NORTH)
    team = svc.user("nursing-op", Role.OPERATOR, org=NORTH, team="Community Nursing")
    base = f"/api/v1/alerts/{south.alert}"
    for who in (north, team):
        assert svc.http.get(base, headers=who).status_code == 404
        assert svc.http.get(f"/api/v1/escalation{base}/notifications", headers=who).status_code == (
            404
        )
        for path, body in (
            ("/acknowledge", None),
            ("/notes", {"text": "seen"}),
            ("/resolve", {"outcome": "false_alarm"}),
            ("/authorities", {"service": "police", "reference": "X1"}),
        ):
            r = svc.http.post(base + path, json=body, headers=who)
            assert r.status_code == 404, (path, r.text)
            # The same answer as an alert that does not exist: nothing to learn from it.
            assert r.json() == {"detail": f"no alert {south.alert}"}
    with svc.store.session() as db:
        alert = db.get(Alert, south.alert)
        assert alert is not None and alert.state == "raised" and alert.acknowledged_by is None
        kinds = db.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == south.alert))
        assert not {"acknowledged", "note", "resolved", "authorities_called"} & set(kinds)

    # The team's own alert, by contrast, is theirs to take.
    own = fleet["north-nursing"].alert
    r = svc.http.post(f"/api/v1/alerts/{own}/acknowledge", headers=team)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"

    # Evidence follows its alert.
    south.device.send_evidence("clip-s", alert_id=_device_alert(svc, south.alert), data=AUDIO)
    centre = svc.user("centre-op", Role.OPERATOR)
    (clip,) = wait_until(
        lambda: svc.http.get(base, headers=centre).json()["evidence"],
        timeout=10,
        what="the evidence reference",
    )
    r = svc.http.put(
        f"/api/v1/devices/{south.badge.device_id}/evidence/clip-s",
        content=AUDIO,
        auth=(south.badge.device_id, south.badge.secret),
    )
    assert r.status_code == 200, r.text
    assert svc.http.get(f"/api/v1/evidence/{clip['id']}/audio", headers=north).status_code == 404
    played = svc.http.get(f"/api/v1/evidence/{clip['id']}/audio", headers=centre)
    assert played.status_code == 200 and played.content == AUDIO
    timeline = svc.http.get(base, headers=centre).json()["timeline"]
    assert [e["actor"] for e in timeline if e["kind"] == "evidence_accessed"] == ["user:centre-op"]


def test_policies_and_the_audit_log_need_an_account_of_the_whole_service(
    svc: Running, fleet: dict[str, Placed]
) -> None:
    north_admin = svc.user("north-admin", Role.ADMIN, org=NORTH)
    for url in ("/api/v1/escalation/policies", "/api/v1/escalation/contacts", "/api/v1/audit"):
        r = svc.http.get(url, headers=north_admin)
        assert r.status_code == 403 and "whole service" in r.json()["detail"], url
    audit = svc.http.get(
        "/api/v1/audit?action=permission_refused", headers=svc.user("root", Role.ADMIN)
    ).json()
    assert {e["target"] for e in audit if e["actor"] == "user:north-admin"} == {
        "GET /api/v1/escalation/policies",
        "GET /api/v1/escalation/contacts",
        "GET /api/v1/audit",
    }


def _device_alert(svc: Running, pk: int) -> str:
    with svc.store.session() as db:
        alert = db.get(Alert, pk)
        assert alert is not None and alert.device_alert_id is not None
        return alert.device_alert_id


def _alert_messages(ws: Any, until_device: str) -> list[dict[str, Any]]:
    """Messages about alerts, up to and including the first about `until_device`."""
    seen = []
    while True:
        msg = json.loads(ws.receive_text())
        if "alert" in msg:
            seen.append(msg)
            if msg["alert"]["device_id"] == until_device:
                return seen


def _fixes(svc: Running, device_id: str) -> int:
    with svc.store.session() as db:
        mine = LocationFix.device_id == device_id
        return db.scalar(select(func.count()).select_from(LocationFix).where(mine)) or 0


def test_a_team_console_hears_only_its_team(svc: Running) -> None:
    south = _place(svc, "ws-south", SOUTH, "Housing")
    mine = _place(svc, "ws-mine", NORTH, "Housing")
    headers = svc.user("ws-team", Role.OPERATOR, org=NORTH, team="Housing")
    token = bearer(headers)
    with console_socket(svc.http, token) as ws:
        first = json.loads(ws.receive_text())
        assert first["kind"] == "snapshot"
        assert [a["id"] for a in first["alerts"]] == [mine.alert]
        epoch, since = first["epoch"], first["seq"]

        # Another organisation's alert, then another team's, then one of the team's: the
        # first alert message this console hears is the team's.
        other_org = _place(svc, "ws-south-2", SOUTH, "Housing")
        other_team = _place(svc, "ws-nursing", NORTH, "Community Nursing")
        own = _place(svc, "ws-mine-2", NORTH, "Housing")
        heard = _alert_messages(ws, own.badge.device_id)
        assert {m["alert"]["device_id"] for m in heard} == {own.badge.device_id}

        # Someone of the whole service acts on the other organisation's alert: not heard.
        centre = svc.user("ws-centre", Role.OPERATOR)
        for placed in (south, other_org, other_team):
            assert (
                svc.http.post(
                    f"/api/v1/alerts/{placed.alert}/acknowledge", headers=centre
                ).status_code
                == 200
            )
        svc.http.post(f"/api/v1/alerts/{mine.alert}/acknowledge", headers=centre)
        heard = _alert_messages(ws, mine.badge.device_id)
        # (The team's newer alert may still be changing meanwhile: that is theirs to hear.)
        assert {m["alert"]["device_id"] for m in heard} <= {
            own.badge.device_id,
            mine.badge.device_id,
        }

        # Alerting workers move: the console follows its own team's, and only theirs.
        for placed in (south, other_team):
            placed.device.send_location()
        wait_until(
            lambda: all(_fixes(svc, p.badge.device_id) >= 2 for p in (south, other_team)),
            timeout=10,
            what="the other workers' positions to be stored",
        )
        mine.device.send_location()
        while True:
            msg = json.loads(ws.receive_text())
            if msg.get("kind") == "alert.position":
                assert msg["device_id"] == mine.badge.device_id
                assert msg["alert_ids"] == [mine.alert]
                break

    # A console catching up after a reconnect is replayed its own events only.
    with console_socket(svc.http, token, f"since={since}&epoch={epoch}") as ws:
        replayed = _alert_messages(ws, mine.badge.device_id)
        assert replayed[0]["seq"] > since
        devices = {m["alert"]["device_id"] for m in replayed}
        assert devices <= {own.badge.device_id, mine.badge.device_id}
