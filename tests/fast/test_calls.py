"""Calls from an alert (escalation/calls.py): the operator's phone rings first, then the
worker's or a contact's, bridged by Twilio's <Dial>. Placed through the real twilio library
against the fake Twilio, whose calls ring, are answered, fetch their TwiML from the service
and post their signed webhooks back to it (tests/fake_twilio_voice.py)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from escalation import policies
from escalation.calls import DURESS_SAID, UNDER_DURESS
from escalation.timeline import EntryKind
from monitor.alerts.labels import span
from monitor.alerts.models import Alert, AlertEvent
from monitor.evidence.models import Evidence, EvidenceCustody
from monitor.users.models import User
from monitor.users.service import set_phone
from tests.fake_twilio import FakeTwilio, Request
from tests.fake_twilio_voice import RECORDING, dial_of
from tests.fast.handlers import FastDevice, Handlers, fast_settings
from tests.support import wait_until

PUBLIC_URL = "https://vigil.example.org"
VIGIL_NUMBER = "+15005550006"
ALICE = "+447700900555"  # the operator's own phone
WORKER = "+447700900001"  # tests.support.add_badge's worker
BACKUP = "+447700900101"
POLICY = f"""
contacts:
  - name: Housing backup
    phone: "{BACKUP}"
    backup_for: [Housing]
  - name: Duty manager
    phone: "+447700900102"
  - name: Incident webhook
    webhook: https://example.org/hook
policies:
  - name: Panic
    alert_types: [red]
    steps:
      - channel: console
      - after: 10m
        channel: sms
        to: [backup, Duty manager]
      - after: 10m
        channel: webhook
        to: [Incident webhook]
"""


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


def calling(db_url: str, tmp_path: Path, fake: FakeTwilio | None, **extra: object) -> Handlers:
    twilio = {}
    if fake is not None:
        twilio = {
            "twilio_account_sid": fake.account_sid,
            "twilio_auth_token": fake.auth_token,
            "twilio_from_number": VIGIL_NUMBER,
            "twilio_api_base": fake.url,
        }
    settings = fast_settings(tmp_path / "data", db_url, public_url=PUBLIC_URL, **twilio, **extra)
    hub = Handlers(settings)
    with hub.store.begin() as db:
        policies.replace_all(db, policies.parse_file(POLICY))
    hub.start()
    if fake is not None:
        fake.voice.reach(PUBLIC_URL, hub.http)
    return hub


@pytest.fixture
def svc(db_url: str, tmp_path: Path, fake: FakeTwilio) -> Iterator[Handlers]:
    hub = calling(db_url, tmp_path, fake, call_recording=True)
    try:
        yield hub
    finally:
        hub.close()


def operator(svc: Handlers, name: str = "alice", phone: str = ALICE) -> dict[str, str]:
    headers = svc.user(name)
    with svc.store.begin() as db:
        set_phone(db, name, phone)
    return headers


def raised(svc: Handlers) -> tuple[FastDevice, str, int]:
    device, _ = svc.badge("call")
    alert_id = device.raise_alert("red")
    listed = svc.http.get("/api/v1/alerts", headers=svc.login("alice")).json()
    pk = next(a["id"] for a in listed if a["device_id"] == device.device_id)
    return device, alert_id, pk


def calls_entries(svc: Handlers, pk: int) -> list[str]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AlertEvent.text)
                .where(AlertEvent.alert_id == pk, AlertEvent.kind == EntryKind.CALL.value)
                .order_by(AlertEvent.id)
            )
        )


def ringing(fake: FakeTwilio, to: str) -> str:
    """The sid of the call the service asked Twilio to place to `to`."""
    made = fake.wait_for_count("call", 1, to=to, answered=True)
    assert made[-1].status_code == 201, made[-1]
    assert made[-1].sid is not None
    return made[-1].sid


def placed(
    svc: Handlers, fake: FakeTwilio, to: str
) -> tuple[dict[str, str], FastDevice, str, int, str]:
    """An alert raised and the operator's call to `to` placed: the operator's headers, the
    device, its alert id, the alert's id in the service, and the sid of the operator's leg,
    ringing."""
    headers = operator(svc)
    device, alert_id, pk = raised(svc)
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": to}, headers=headers)
    assert r.status_code == 201, r.text
    return headers, device, alert_id, pk, ringing(fake, ALICE)


def test_the_operator_is_rung_then_bridged_to_the_worker_and_the_call_recorded(
    svc: Handlers, fake: FakeTwilio
) -> None:
    headers = operator(svc)
    assert svc.http.get("/api/v1/auth/me", headers=headers).json()["phone"] == ALICE
    _, _, pk = raised(svc)
    got = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers)
    assert got.status_code == 200, got.text
    offered = got.json()
    assert offered["why_not"] is None and offered["recording"] is True
    assert [(t["to"], t["name"], t["phone"], t["refused"]) for t in offered["targets"]] == [
        ("worker", "Alex Worker", WORKER, None),
        ("Housing backup", "Housing backup", BACKUP, None),
        ("Duty manager", "Duty manager", "+447700900102", None),
    ]  # not the webhook: it has no phone

    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert r.status_code == 201, r.text
    call = r.json()
    assert (call["state"], call["to_phone"], call["recorded"]) == ("calling_operator", WORKER, True)
    # A second press of the button is the same call, not a second one.
    again = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert again.status_code == 409 and "already under way" in again.json()["detail"]

    first = ringing(fake, ALICE)  # the operator's own phone rings first, from Vigil's number
    made = fake.calls[-1]
    assert made.param("From") == VIGIL_NUMBER
    assert made.param("Url") == f"{PUBLIC_URL}/twilio/calls/{call['id']}/answer"
    assert fake.calls[-1].params["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]

    fake.voice.answer(first)
    assert fake.voice.said(first) == [
        f"Vigil, alert {pk}. Connecting you to Alex Worker, the worker. This call is recorded."
    ]
    fetched = fake.voice.posted("/answer")[-1]
    assert dial_of(fetched.body)["record"] == "record-from-answer-dual"
    second = fake.voice.child(first)
    assert fake.resource(second)["to"] == WORKER
    assert fake.resource(second)["from"] == VIGIL_NUMBER  # the worker sees the centre's number
    assert fake.resource(second)["parent_call_sid"] == first

    fake.voice.answer(second)
    states = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["calls"]
    assert states[0]["state"] == "connected"

    fake.voice.hang_up(second, talked_s=133)
    assert all(200 <= w.status_code < 300 for w in fake.voice.webhooks), [
        (w.url, w.status_code, w.body) for w in fake.voice.webhooks
    ]
    done = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["calls"][0]
    assert (done["state"], done["duration_s"]) == ("ended", 133)
    assert fake.resource(first)["status"] == "completed"  # Twilio hung up after "Goodbye"
    assert fake.voice.said(first)[-1] == "The call has ended. Goodbye."

    digest = hashlib.sha256(RECORDING).hexdigest()
    with svc.store.session() as db:
        ev = db.scalars(select(Evidence).where(Evidence.alert_id == pk)).one()
        assert (ev.evidence_id, ev.sha256, ev.kind) == (done["evidence_id"], digest, "audio")
        assert ev.duration_ms == 133_000
        # Kept by the operator who placed the call, in custody and in the timeline: the
        # worker's device, under which it is filed, did not send it.
        custody = db.execute(
            select(EvidenceCustody.action, EvidenceCustody.actor).where(
                EvidenceCustody.evidence_pk == ev.id
            )
        ).all()
        assert [tuple(c) for c in custody] == [("uploaded", "user:alice")]
        entry = db.scalar(
            select(AlertEvent.actor).where(AlertEvent.alert_id == pk, AlertEvent.kind == "evidence")
        )
        assert entry == "user:alice"
    clip = svc.http.get(f"/api/v1/evidence/{ev.id}/audio", headers=headers)
    assert clip.status_code == 200 and hashlib.sha256(clip.content).hexdigest() == digest

    who = f"Call from alice to Alex Worker ({WORKER}): "
    assert calls_entries(svc, pk) == [
        who + f"ringing alice on {ALICE} (the conversation will be recorded)",
        who + "alice answered; ringing Alex Worker",
        who + "Alex Worker answered: connected",
        who + "ended after 2 min 13 s",
        who + f"recording kept as evidence {ev.evidence_id} (2 min 13 s, sha256 {digest})",
    ]

    # Twilio's requests are signed and counted once: the same one again changes nothing.
    last = fake.voice.posted("leg=other")[-1]
    replay = fake.voice._post(last.url, last.params)
    assert replay.status_code == 409
    assert len(calls_entries(svc, pk)) == 5


def test_the_same_recording_news_twice_at_once_is_kept_once(
    svc: Handlers, fake: FakeTwilio
) -> None:
    _, _, _, pk, first = placed(svc, fake, "worker")
    fake.voice.answer(first)
    fake.voice.answer(fake.voice.child(first))
    fake.voice.hang_up(fake.voice.child(first), talked_s=20)
    news = fake.voice.posted("/recording")[-1]
    assert news.status_code == 204
    # Another recording of the call, whose news comes twice at the same moment (Twilio's
    # retry, two replicas), while its media is slow to come: both deliveries overlap.
    sid = fake.add_recording(first, RECORDING[::-1], 20, channels=2, source="DialVerb")
    fake.hang(sid, 0.5, kind="other")
    params = {**news.params, "RecordingSid": sid, "RecordingUrl": fake.resource(sid)["media_url"]}
    start = threading.Barrier(2)
    answers: list[int] = []

    def deliver() -> None:
        start.wait()
        answers.append(fake.voice._post(news.url, params).status_code)

    both = [threading.Thread(target=deliver) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join(timeout=20)
    assert sorted(answers) == [204, 409]
    with svc.store.session() as db:
        kept = db.scalars(select(Evidence.evidence_id).where(Evidence.alert_id == pk)).all()
    assert sorted(kept) == sorted([f"call-{news.params['RecordingSid']}", f"call-{sid}"])
    assert len([e for e in calls_entries(svc, pk) if f"call-{sid}" in e]) == 1
    media = [
        q for q in fake.requests if q.method == "GET" and sid in q.path and "json" not in q.path
    ]
    assert len(media) == 1  # the second was refused before it fetched anything

    # News of a recording Twilio cannot give: not kept, so the claim is let go, and the same
    # news again is tried again (not refused as a replay).
    lost = {**params, "RecordingSid": "RE" + "0" * 32}
    assert [fake.voice._post(news.url, lost).status_code for _ in range(2)] == [502, 502]


def test_nobody_answers_on_the_other_side(svc: Handlers, fake: FakeTwilio) -> None:
    headers, _, _, pk, first = placed(svc, fake, "Housing backup")
    fake.voice.answer(first)
    fake.voice.decline(fake.voice.child(first), "busy")
    assert fake.voice.said(first)[-1] == "Housing backup's line was busy. Goodbye."
    call = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["calls"][0]
    assert (call["state"], call["recording_sid"]) == ("busy", None)  # nothing to record
    assert calls_entries(svc, pk)[-1].endswith("): Housing backup's line was busy")

    # The operator who does not answer their own phone: nobody else is rung.
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert r.status_code == 201, r.text
    unanswered = fake.wait_for_count("call", 2, to=ALICE, answered=True)[-1].sid
    assert unanswered is not None
    fake.voice.decline(unanswered)
    assert calls_entries(svc, pk)[-1].endswith("): alice did not answer")
    assert fake.voice.leg(unanswered).child is None


def test_the_workers_phone_is_never_rung_under_duress(svc: Handlers, fake: FakeTwilio) -> None:
    headers = operator(svc)
    device, alert_id, pk = raised(svc)
    # Placed before the duress, the operator's own phone still ringing: hung up at the
    # duress (through Twilio), so nobody is dialled when they would have answered.
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert r.status_code == 201, r.text
    first = ringing(fake, ALICE)
    fake.voice.ring(first)
    device.cancel_alert(alert_id, device.duress_pin)
    wait_until(lambda: fake.resource(first)["status"] == "canceled", what="alice's phone hung up")
    assert fake.voice.leg(first).child is None
    placed = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["calls"]
    assert placed[0]["state"] == "cancelled"
    assert calls_entries(svc, pk)[-1] == (
        f"Call from alice to Alex Worker ({WORKER}): stopped while alice's phone rang. "
        + UNDER_DURESS
    )

    refused = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert refused.status_code == 409
    assert "whoever is with the worker would hear their phone ring" in refused.json()["detail"]
    targets = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["targets"]
    assert targets[0]["to"] == "worker" and targets[0]["refused"].startswith("Under duress")
    # Backup staff may still be called.
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "Housing backup"}, headers=headers)
    assert r.status_code == 201, r.text


def worker_is_own_backup(svc: Handlers) -> None:
    """The team's backup staff is the worker themselves (small teams): the contact "Housing
    backup" has the worker's own number."""
    with svc.store.begin() as db:
        own = POLICY.replace(f'phone: "{BACKUP}"', f'phone: "{WORKER}"')
        policies.replace_all(db, policies.parse_file(own))


def test_a_contact_with_the_workers_own_number_is_not_rung_under_duress(
    svc: Handlers, fake: FakeTwilio
) -> None:
    worker_is_own_backup(svc)
    headers, _, _, pk, first = placed(svc, fake, "Housing backup")
    # A duress this engine was not told of (keyed on a replica that stopped before it acted
    # on it): the operator's answer looks again, by the number it would dial.
    with svc.store.begin() as db:
        alert = db.get(Alert, pk)
        assert alert is not None
        alert.duress = True
    fake.voice.answer(first)
    assert fake.voice.leg(first).child is None
    assert fake.voice.said(first) == [DURESS_SAID]
    assert calls_entries(svc, pk)[-1] == (
        f"Call from alice to Housing backup ({WORKER}): alice answered; not connected. "
        + UNDER_DURESS
    )

    # Placing: refused, as the worker is; the other contact is not.
    refused = svc.http.post(
        f"/api/v1/alerts/{pk}/calls", json={"to": "Housing backup"}, headers=headers
    )
    assert (refused.status_code, refused.json()["detail"]) == (409, UNDER_DURESS)
    targets = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["targets"]
    assert [(t["to"], t["refused"]) for t in targets] == [
        ("worker", UNDER_DURESS),
        ("Housing backup", UNDER_DURESS),
        ("Duty manager", None),
    ]
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "Duty manager"}, headers=headers)
    assert r.status_code == 201, r.text
    assert [c.to for c in fake.calls] == [ALICE, ALICE]  # the worker's number never


@pytest.mark.parametrize(("to", "name"), [("worker", "Alex Worker"), ("Housing backup", None)])
def test_the_workers_phone_ringing_stops_at_the_duress(
    svc: Handlers, fake: FakeTwilio, to: str, name: str | None
) -> None:
    """Dialled once the operator answered, and ringing when the PIN is keyed: the <Dial> is
    ended through Twilio at once, not at its timeout, and the operator hears why."""
    if name is None:
        worker_is_own_backup(svc)
    headers, device, alert_id, pk, first = placed(svc, fake, to)
    fake.voice.answer(first)
    second = fake.voice.child(first)
    assert (fake.resource(second)["to"], fake.resource(second)["status"]) == (WORKER, "ringing")

    device.cancel_alert(alert_id, device.duress_pin)
    updates = fake.wait_for(
        lambda reqs: any(q.path.endswith(f"/Calls/{first}.json") and q.answered for q in reqs)
    )
    updates = [q for q in updates if q.path.endswith(f"/Calls/{first}.json")]
    assert [(q.method, q.status_code) for q in updates] == [("POST", 200)]  # twilio library
    assert fake.resource(second)["status"] == "canceled"  # the worker's phone stopped
    assert fake.voice.said(first)[-1] == DURESS_SAID
    assert fake.resource(first)["status"] == "completed"
    assert fake.voice.posted("/dialled") == []
    assert all(200 <= w.status_code < 300 for w in fake.voice.webhooks)
    call = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()["calls"][0]
    assert call["state"] == "cancelled"
    assert calls_entries(svc, pk)[-2:] == [
        f"Call from alice to {name or to} ({WORKER}): alice answered; ringing {name or to}",
        f"Call from alice to {name or to} ({WORKER}): stopped while {name or to}'s phone rang. "
        + UNDER_DURESS,
    ]  # and Twilio's news of both legs' end after it changes nothing


def test_the_workers_phone_stops_at_the_duress_though_twilio_is_slow_to_answer(
    svc: Handlers, fake: FakeTwilio
) -> None:
    """Twilio does not answer the first request to end the call within its timeout: it is
    asked again, and the worker's phone stops long before the <Dial>'s own timeout."""
    _, device, alert_id, pk, first = placed(svc, fake, "worker")
    fake.voice.answer(first)
    second = fake.voice.child(first)
    fake.hang(first, 60.0, times=1, kind="call")  # held far past the test's wait

    device.cancel_alert(alert_id, device.duress_pin)

    def updates(reqs: list[Request]) -> list[tuple[str, int]]:
        return [(q.method, q.status_code) for q in reqs if q.path.endswith(f"/Calls/{first}.json")]

    # The first still held, unanswered; the second, a second after its timeout, answered.
    fake.wait_for(lambda reqs: updates(reqs) == [("POST", 0), ("POST", 200)])
    assert fake.resource(second)["status"] == "canceled"  # the worker's phone stopped
    assert fake.voice.said(first)[-1] == DURESS_SAID
    assert not [e for e in calls_entries(svc, pk) if "did not end" in e]


def test_an_operator_without_a_phone_is_told_why(svc: Handlers, fake: FakeTwilio) -> None:
    operator(svc)
    headers = svc.user("bob")
    _, _, pk = raised(svc)
    offered = svc.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()
    assert offered["why_not"].startswith("You have no phone number on your user (bob)")
    r = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
    assert r.status_code == 409 and "vigil user set-phone bob" in r.json()["detail"]
    unknown = svc.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "Nobody"}, headers=headers)
    assert unknown.status_code == 409  # the operator's phone is looked at first
    assert not [c for c in fake.calls if c.to == ALICE]


def test_without_twilio_calls_are_refused(db_url: str, tmp_path: Path) -> None:
    hub = calling(db_url, tmp_path, None)
    try:
        headers = operator(hub)
        _, _, pk = raised(hub)
        offered = hub.http.get(f"/api/v1/alerts/{pk}/calls", headers=headers).json()
        assert offered["why_not"].startswith("Calls from the console need Twilio")
        r = hub.http.post(f"/api/v1/alerts/{pk}/calls", json={"to": "worker"}, headers=headers)
        assert r.status_code == 409
        assert r.json()["detail"].startswith("Calls from the console need Twilio")
    finally:
        hub.close()


def test_an_operators_phone_is_set_from_the_command_line(vigil) -> None:  # type: ignore[no-untyped-def]
    vigil("db", "upgrade")
    pw = ("--password", "a good long one")
    refused = vigil("user", "add", "amy", "--phone", "+44 7700 900555", *pw, ok=False)
    assert "is not in E.164 form" in refused.output
    vigil("user", "add", "amy", "--phone", ALICE, *pw)
    assert "phone +447700900556" in vigil("user", "set-phone", "amy", "+447700900556").output
    assert "E.164" in vigil("user", "set-phone", "amy", "07700 900556", ok=False).output
    with vigil.store().session() as db:
        assert db.scalar(select(User.phone).where(User.username == "amy")) == "+447700900556"
    assert "phone removed" in vigil("user", "set-phone", "amy", "").output
    vigil("user", "set-phone", "nobody", ALICE, ok=False)


def test_a_length_of_time_is_said_one_way() -> None:
    """A call's length here and how early "Escalate now" ran a step (escalation/flows.py)
    are both said by labels.span."""
    said = [span(s) for s in (0, 45, 59.6, 125, 3600, 3725)]
    assert said == ["0 s", "45 s", "1 min 0 s", "2 min 5 s", "1 h 0 min", "1 h 2 min"]
