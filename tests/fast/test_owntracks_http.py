"""OwnTracks in HTTP mode (gateways/owntracks): the app's POSTs become positions, an offline
device and help alerts through ingest, a region transition an entry of the worker's open
visit, and a `locate` rides back in the answer."""

from __future__ import annotations

import base64
import io
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from gateways.owntracks.http import FAILURE_BURST, FAILURES_PER_S
from monitor.alerts.models import Alert
from monitor.devices import service as devices
from monitor.devices.commands import queue_command
from monitor.devices.models import Device, LocationFix
from monitor.ingest.models import RefusedMessage
from monitor.ingest.urgent import UrgentWorker
from monitor.orgs import service as orgs
from monitor.users.models import Role
from monitor.visits.models import Visit, VisitEvent
from tests import owntracks_messages as ot
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until

URL = "/owntracks/pub"


@pytest.fixture
def phone(svc: Running) -> tuple[str, str]:
    """An OwnTracks device of a worker: (device id, secret)."""
    with svc.store.begin() as db:
        worker = orgs.add_worker(db, name="Alex Worker", cancel_pin="1234", duress_pin="9876")
        device, secret = devices.add_device(
            db, f"ot-alex-{uuid.uuid4().hex[:6]}", worker_id=worker.id, kind=devices.OWNTRACKS
        )
        return device.id, secret


def headers(device_id: str, secret: str, **extra: str) -> dict[str, str]:
    token = base64.b64encode(f"{device_id}:{secret}".encode()).decode()
    # As the Android app sends them: Basic auth, and who it is in X-Limit-U/D.
    return {
        "Authorization": f"Basic {token}",
        "Content-Type": "application/json",
        "X-Limit-U": device_id,
        "X-Limit-D": device_id,
        **extra,
    }


def post(svc: Running, phone: tuple[str, str], message: dict[str, Any]) -> Any:
    return svc.http.post(URL, content=ot.encode(message), headers=headers(*phone))


def test_a_location_is_a_position_stored_before_the_answer(
    svc: Running, phone: tuple[str, str]
) -> None:
    device_id, _ = phone
    r = post(svc, phone, ot.android_location(device_id))
    assert r.status_code == 200 and r.json() == []
    with svc.store.session() as db:
        (fix,) = db.scalars(select(LocationFix).where(LocationFix.device_id == device_id))
        assert (fix.lat, fix.lon, fix.acc, fix.alt) == (51.5072, -0.1276, 12, 35)
        assert fix.spd == 5.0  # 18 km/h
        device = db.get(Device, device_id)
        assert device is not None and device.battery == 81 and device.online


def test_a_manual_report_for_help_raises_one_red_alert(
    svc: Running, phone: tuple[str, str]
) -> None:
    device_id, _ = phone
    report = ot.ios_help_report()
    for _ in range(2):  # the app sends a report again when it was not answered
        assert post(svc, phone, report).status_code == 200
    with svc.store.session() as db:
        (alert,) = db.scalars(select(Alert).where(Alert.device_id == device_id))
        assert alert.type == "red" and alert.trigger == "app"
        assert alert.device_alert_id == f"owntracks-{report['tst']}"
        assert (alert.lat, alert.lon) == (52.085284, 5.120975)
    # A manual report without the word, or an automatic one with it, is a position only.
    post(svc, phone, ot.ios_help_report(report["tst"] + 60, word="Lunch"))
    post(svc, phone, {**ot.ios_help_report(report["tst"] + 120), "t": "p"})
    with svc.store.session() as db:
        assert db.scalar(select(func.count(Alert.id)).where(Alert.device_id == device_id)) == 1
        count = select(func.count(LocationFix.id)).where(LocationFix.device_id == device_id)
        assert db.scalar(count) == 3


def test_a_help_report_with_details_the_protocol_refuses_still_raises_its_alert(
    svc: Running, phone: tuple[str, str]
) -> None:
    """A speed and course the phone did not measure (-1), a battery level it could not read,
    or no usable position: the alert is raised without them, never refused for them."""
    device_id, _ = phone
    unmeasured = {**ot.ios_help_report(), "vel": -1, "cog": -1, "batt": -1}
    nowhere = {**ot.ios_help_report(unmeasured["tst"] + 60), "lat": 91}
    for report in (unmeasured, nowhere):
        r = post(svc, phone, report)
        assert r.status_code == 200 and "X-Vigil-Refused" not in r.headers, r.headers
    with svc.store.session() as db:
        alerts = list(
            db.scalars(select(Alert).where(Alert.device_id == device_id).order_by(Alert.id))
        )
    assert [a.device_alert_id for a in alerts] == [
        f"owntracks-{unmeasured['tst']}",
        f"owntracks-{nowhere['tst']}",
    ]
    assert (alerts[0].lat, alerts[0].lon, alerts[0].acc) == (52.085284, 5.120975, 5)
    assert alerts[1].lat is None


def test_lwt_is_offline_and_others_are_taken_and_dropped(
    svc: Running, phone: tuple[str, str]
) -> None:
    device_id, _ = phone
    assert post(svc, phone, ot.android_location(device_id)).status_code == 200
    assert post(svc, phone, ot.lwt()).status_code == 200
    with svc.store.session() as db:
        device = db.get(Device, device_id)
        assert device is not None and not device.online
    # A transition is where the worker was; a card, and the empty body OwnTracks sends when
    # a friend is deleted, are answered and ignored.
    assert post(svc, phone, ot.transition("leave")).json() == []
    assert post(svc, phone, ot.card()).json() == []
    r = svc.http.post(URL, content=b"", headers=headers(*phone))
    assert r.status_code == 200 and r.json() == []
    with svc.store.session() as db:
        count = select(func.count(LocationFix.id)).where(LocationFix.device_id == device_id)
        assert db.scalar(count) == 2


def test_locate_is_answered_once_as_report_location(svc: Running, phone: tuple[str, str]) -> None:
    device_id, _ = phone
    with svc.store.begin() as db:
        queue_command(db, device_id, "locate")
    first = post(svc, phone, ot.android_location(device_id))
    assert first.json() == [{"_type": "cmd", "action": "reportLocation"}]
    again = post(svc, phone, ot.android_location(device_id, t="r"))
    assert again.json() == []


def test_what_is_refused_and_why(svc: Running, phone: tuple[str, str]) -> None:
    device_id, secret = phone
    fix = ot.encode(ot.android_location(device_id))
    wrong = svc.http.post(URL, content=fix, headers=headers(device_id, secret + "x"))
    assert wrong.status_code == 401 and "Basic" in wrong.headers["WWW-Authenticate"]
    assert svc.http.post(URL, content=fix).status_code == 401
    _badge, b = svc.badge("not-owntracks")
    assert (
        svc.http.post(URL, content=fix, headers=headers(b.device_id, b.secret)).status_code == 403
    )
    other_user = headers(device_id, secret, **{"X-Limit-U": "someone-else"})
    assert svc.http.post(URL, content=fix, headers=other_user).status_code == 400
    bad_json = post_raw(svc, phone, b"{not json")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["detail"]
    huge = svc.http.post(URL, content=b" " * (513 * 1024), headers=headers(*phone))
    assert huge.status_code == 413
    encrypted = post(svc, phone, {"_type": "encrypted", "data": "c2VjcmV0"})
    assert encrypted.status_code == 400 and "encryption" in encrypted.json()["detail"]

    # Out of range: refused by monitor's own parser and recorded there; the app is answered
    # 200 (an error would have it resend the fix ahead of all later ones), with the reason.
    r = post(svc, phone, ot.android_location(device_id, lat=123.4))
    assert r.status_code == 200 and r.json() == []
    assert r.headers["X-Vigil-Refused"].startswith("location: loc.lat")
    with svc.store.session() as db:
        (refused,) = db.scalars(select(RefusedMessage).where(RefusedMessage.device_id == device_id))
        assert "loc.lat" in refused.reason
        count = select(func.count(LocationFix.id)).where(LocationFix.device_id == device_id)
        assert db.scalar(count) == 0


def post_raw(svc: Running, phone: tuple[str, str], body: bytes) -> Any:
    return svc.http.post(URL, content=body, headers=headers(*phone))


def test_failed_sign_ins_are_turned_away_by_address(svc: Running, phone: tuple[str, str]) -> None:
    device_id, secret = phone
    fix = ot.encode(ot.android_location(device_id))
    assert post(svc, phone, ot.android_location(device_id)).status_code == 200

    def until_turned_away(sent: dict[str, str]) -> tuple[list[int], int]:
        """The answers until the first 429, and how many tries the bucket refilled meanwhile:
        it refills one a second, so on a busy machine a slow loop earns a try or two more."""
        started, codes = time.monotonic(), []
        while 429 not in codes and len(codes) < 200:
            codes.append(svc.http.post(URL, content=fix, headers=sent).status_code)
        return codes, int((time.monotonic() - started) * FAILURES_PER_S) + 1

    codes, refilled = until_turned_away(headers("ot-nobody", secret))
    assert codes[-1] == 429 and set(codes[:-1]) == {401}
    assert FAILURE_BURST <= len(codes) - 1 <= FAILURE_BURST + refilled
    # Turned away before the password is checked, right or wrong (but for the tries refilled)...
    codes, refilled = until_turned_away(headers(device_id, "x"))
    assert codes[-1] == 429 and set(codes[:-1]) <= {401} and len(codes) - 1 <= refilled
    # ...but credentials that were right a moment ago still get in from that address.
    assert post(svc, phone, ot.android_location(device_id)).status_code == 200


def test_one_app_holds_at_most_four_of_the_service_threads(
    svc: Running, phone: tuple[str, str]
) -> None:
    """Requests waiting for the store hold threads the console's routes run on too: one set
    of credentials gets four at once, the rest are turned away (429) until one is answered."""
    device_id, _ = phone
    waiting = UrgentWorker(svc.store, svc.settings)  # not started: help reports wait
    running, svc.ingest.urgent = svc.ingest.urgent, waiting
    try:
        with ThreadPoolExecutor(6) as pool:
            held = [pool.submit(post, svc, phone, ot.ios_help_report()) for _ in range(4)]
            wait_until(lambda: waiting.depth() == 4, what="four help reports waiting")
            turned_away = post(svc, phone, ot.android_location(device_id))
            assert turned_away.status_code == 429
            assert turned_away.headers["Retry-After"] == "1"
            waiting.start()
            assert [f.result(timeout=20).status_code for f in held] == [200] * 4
    finally:
        svc.ingest.urgent = running
        waiting.stop()
        waiting.join(timeout=10)
        waiting.pins.join(timeout=10)
    assert post(svc, phone, ot.android_location(device_id)).status_code == 200


def places(svc: Running) -> list[VisitEvent]:
    with svc.store.session() as db:
        return list(db.scalars(select(VisitEvent).where(VisitEvent.kind == "place")))


def test_a_transition_during_a_visit_is_in_its_timeline_once(svc: Running) -> None:
    # The worker runs the visit's timer on their badge and carries OwnTracks on the phone.
    badge, b = svc.badge("badge-ot")
    with svc.store.begin() as db:
        device, secret = devices.add_device(
            db, f"ot-{b.device_id}", worker_id=b.worker_id, kind=devices.OWNTRACKS
        )
        phone = (device.id, secret)
    visit_id = badge.start_visit(note="Home visit, 12 Elm St")
    badge.wait_for("visit_started", visit_id=visit_id, timeout=10)
    alert_id = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)

    # (A second on: OwnTracks gives whole seconds, and the timeline is in time order.)
    arrived = ot.transition("enter", ot.now_s() + 1)
    for _ in range(2):  # the app sends it again when it was not answered
        assert post(svc, phone, arrived).json() == []
    assert post(svc, phone, ot.transition("leave", ot.now_s() + 2)).status_code == 200

    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    visit = svc.http.get(f"/api/v1/alerts/{row['id']}", headers=ops).json()["visit"]
    assert visit["device_visit_id"] == visit_id
    texts = [e["text"] for e in visit["events"]]
    assert texts == [
        "Started for 30 min",
        "Arrived at 12 Elm St (OwnTracks region)",
        "Left 12 Elm St (OwnTracks region)",
    ]
    place = visit["events"][1]
    assert place["kind"] == "place" and place["actor"] == f"device:{phone[0]}"
    assert place["data"] == {
        "source": "owntracks",
        "device_id": phone[0],
        "event": "enter",
        "region": "12 Elm St",
    }
    # Once the alert is over, an operator no longer sees where the worker was: the places go
    # with the positions (monitor/privacy/positions.py).
    r = svc.http.post(
        f"/api/v1/alerts/{row['id']}/resolve", headers=ops, json={"outcome": "false_alarm"}
    )
    assert r.status_code == 200, r.text
    after = svc.http.get(f"/api/v1/alerts/{row['id']}", headers=ops).json()["visit"]["events"]
    assert [e["text"] for e in after] == ["Started for 30 min"]
    # The safety lead, who may see positions, finds them under the visit in the incident PDF.
    lead = svc.user("lead", Role.SUPERVISOR)
    report = svc.http.get(f"/api/v1/incidents/{row['id']}/report.pdf", headers=lead)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(report.content)).pages)
    assert "Arrived at 12 Elm St (OwnTracks region)" in text
    # Each transition is also the position it always was.
    with svc.store.session() as db:
        count = select(func.count(LocationFix.id)).where(LocationFix.device_id == phone[0])
        assert db.scalar(count) == 3

    # Once the visit is over, a transition is a position only.
    badge.end_visit(visit_id)
    badge.wait_for("visit_ended", visit_id=visit_id, timeout=10)
    post(svc, phone, ot.transition("enter", ot.now_s() + 3))
    assert len(places(svc)) == 2


def test_no_open_visit_no_place(svc: Running, phone: tuple[str, str]) -> None:
    device_id, _ = phone
    assert post(svc, phone, ot.transition("enter")).status_code == 200
    assert places(svc) == []
    # A visit of the phone's own: what happened before it started stays out of it (a region
    # can be the worker's home).
    svc.device(device_id).start_visit()
    with svc.store.session() as db:
        (visit,) = db.scalars(select(Visit).where(Visit.device_id == device_id))
        assert visit.state == "open"
    post(svc, phone, ot.transition("leave", ot.now_s() - 3600))
    assert places(svc) == []
    post(svc, phone, ot.transition("enter"))
    assert [p.text for p in places(svc)] == ["Arrived at 12 Elm St (OwnTracks region)"]
