"""The worker line (gateways/line.py): a worker texts or calls the Vigil number from their
registered phone. Webhooks are posted as Twilio posts them, signed with twilio's own
RequestValidator; the call's recording is fetched with the real twilio library from the
local fake of Twilio's REST API (tests/fake_twilio.py)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from httpx import Response
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from escalation.inbound import MAX_FORM
from gateways import line_words
from monitor.alerts.models import Alert
from monitor.broker import password_lines
from monitor.devices.models import Device
from monitor.evidence.models import Evidence, EvidenceCustody
from monitor.ingest.models import RefusedMessage
from monitor.ingest.pins import WRONG_PIN_LIMIT
from monitor.orgs import service as orgs
from monitor.users.models import Role
from tests.fake_twilio import FakeTwilio
from tests.fast.handlers import Handlers, fast_settings
from tests.support import wait_until

PUBLIC_URL = "https://vigil.example.org"
VIGIL_NUMBER = "+15005550006"
# Registered with spacing, as an administrator might type it; Twilio sends E.164.
REGISTERED = "+44 7700 900-123"
PHONE = "+447700900123"
STRANGER = "+447700900999"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


@pytest.fixture
def line(db_url: str, tmp_path: Path, fake: FakeTwilio) -> Iterator[Handlers]:
    settings = fast_settings(
        tmp_path / "data",
        db_url,
        public_url=PUBLIC_URL,
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_from_number=VIGIL_NUMBER,
        twilio_api_base=fake.url,
    )
    hub = Handlers(settings)
    try:
        hub.start()
        yield hub
    finally:
        hub.close()


def add_worker(svc: Handlers, phone: str = REGISTERED) -> int:
    with svc.store.begin() as db:
        worker = orgs.add_worker(
            db, name="Sam Lone", cancel_pin="1234", duress_pin="9876", phone=phone, team="Housing"
        )
        return worker.id


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def post(svc: Handlers, path: str, params: dict[str, str], *, signed: bool = True) -> Response:
    """A form posted as Twilio posts it, signed over the public URL it was sent to."""
    signature = RequestValidator(svc.settings.twilio_auth_token).compute_signature(
        PUBLIC_URL + path, params
    )
    headers = {"X-Twilio-Signature": signature if signed else "forged"}
    response: Response = svc.http.post(path, data=params, headers=headers)
    return response


def text(svc: Handlers, body: str, sender: str = PHONE, message_sid: str | None = None) -> Response:
    params = {
        "MessageSid": message_sid or sid("SM"),
        "AccountSid": svc.settings.twilio_account_sid,
        "From": sender,
        "To": VIGIL_NUMBER,
        "Body": body,
    }
    return post(svc, "/twilio/sms", params)


def answer(r: Response) -> str:
    assert r.status_code == 200, r.text
    found = re.search(r"<Message>(.*)</Message>", r.text)
    assert found is not None, r.text
    return found[1]


def line_alerts(svc: Handlers) -> list[Alert]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(Alert)
                .join(Device, Device.id == Alert.device_id)
                .where(Device.kind == "line")
                .order_by(Alert.id)
            )
        )


def refused(svc: Handlers) -> list[RefusedMessage]:
    with svc.store.session() as db:
        return list(db.scalars(select(RefusedMessage).order_by(RefusedMessage.id)))


def test_a_text_raises_one_red_alert_for_the_worker_however_often_it_comes(
    line: Handlers,
) -> None:
    worker_id = add_worker(line)
    message_sid = sid("SM")
    assert answer(text(line, "Help, 12 Elm St flat 3", message_sid=message_sid)) == (
        line_words.RECEIVED
    )
    [alert] = line_alerts(line)
    assert (alert.type, alert.state, alert.worker_id) == ("red", "raised", worker_id)
    assert alert.device_id == f"line-{worker_id}"
    assert alert.device_alert_id == f"sms-{message_sid}"
    assert "Help, 12 Elm St flat 3" in (alert.note or "")
    # The same request again (a replay, or Twilio retrying what was answered) changes nothing.
    assert text(line, "Help, 12 Elm St flat 3", message_sid=message_sid).status_code == 409
    # Twilio retrying while the first is still in hand: still one alert.
    again = sid("SM")
    with ThreadPoolExecutor(4) as pool:
        tries = list(pool.map(lambda _: text(line, "HELP", message_sid=again), range(4)))
    codes = [r.status_code for r in tries]
    assert 200 in codes and set(codes) <= {200, 409}, codes
    # Each answered one tells the worker their alert is taken, never that it was refused.
    assert {answer(r) for r in tries if r.status_code == 200} == {line_words.RECEIVED}
    assert len(line_alerts(line)) == 2
    # Another text is another alert, on the same line device.
    answer(text(line, "still here"))
    assert {a.device_id for a in line_alerts(line)} == {f"line-{worker_id}"}
    with line.store.session() as db:
        device = db.get(Device, f"line-{worker_id}")
        assert device is not None and device.kind == "line" and device.worker_id == worker_id
        # No account at the broker: nothing may connect as the line.
        assert not [entry for entry in password_lines(db) if entry.startswith("line-")]


def test_twilio_hears_503_until_the_alert_is_stored_and_its_retry_makes_one_alert(
    line: Handlers,
) -> None:
    add_worker(line)
    line.restart(line_wait_s=0.5)
    line.ingest.urgent.stop()  # ingest takes the alert but does not get to store it
    line.ingest.urgent.join(timeout=10)
    message_sid = sid("SM")
    assert text(line, "help", message_sid=message_sid).status_code == 503
    line.restart()  # as after a crash: what the stopped worker held is gone
    assert answer(text(line, "help", message_sid=message_sid)) == line_words.RECEIVED
    assert len(line_alerts(line)) == 1


def test_cancel_by_sms_follows_the_pins_and_duress_is_answered_as_a_cancel(
    line: Handlers,
) -> None:
    add_worker(line)
    assert answer(text(line, "CANCEL 1234")) == line_words.NO_ALERT

    answer(text(line, "help"))
    wrong = text(line, "cancel 0000")
    assert answer(wrong) == line_words.CANCEL_ANSWERS["cancel_rejected"]
    assert line_alerts(line)[-1].state == "raised"
    assert answer(text(line, "CANCEL")) == line_words.HOW_TO_CANCEL
    cancelled = text(line, "Cancel 1234")
    assert line_alerts(line)[-1].state == "cancelled"

    answer(text(line, "help again"))
    duress = text(line, "Cancel 9876")
    # Nothing in the answer sets the duress PIN apart: the same TwiML, byte for byte.
    assert duress.text == cancelled.text
    assert duress.headers["content-type"] == cancelled.headers["content-type"]
    assert answer(duress) == line_words.CANCEL_ANSWERS["alert_cancelled"]
    alert = line_alerts(line)[-1]
    assert alert.duress and alert.state == "raised"


def test_after_the_duress_pin_on_an_alert_that_is_over_every_answer_is_as_without_it(
    line: Handlers,
) -> None:
    add_worker(line)
    add_worker(line, phone="+447700900456")
    seen: dict[str, list[str]] = {}
    for phone, second_pin in ((PHONE, "1234"), ("+447700900456", "9876")):
        answers = [answer(text(line, "help", sender=phone))]
        for pin in ("1234", second_pin, "1234", "0000"):
            answers.append(answer(text(line, f"CANCEL {pin}", sender=phone)))
        seen[second_pin] = answers
    assert seen["9876"] == seen["1234"]
    # Yet the second worker's duress PIN raised a duress alert, silently.
    with line.store.session() as db:
        assert db.scalar(select(Alert).where(Alert.duress.is_(True), Alert.type == "duress"))


def test_wrong_pins_by_sms_lock_the_line_out_as_they_would_a_device(line: Handlers) -> None:
    add_worker(line)
    answer(text(line, "help"))
    for _ in range(WRONG_PIN_LIMIT):
        assert answer(text(line, "CANCEL 0000")) == line_words.CANCEL_ANSWERS["cancel_rejected"]
    # Locked out: even the right PIN is refused for now, and the alert goes on.
    assert answer(text(line, "CANCEL 1234")) == line_words.CANCEL_ANSWERS["cancel_rejected"]
    assert line_alerts(line)[-1].state == "raised"


def test_unknown_numbers_raise_nothing_and_are_recorded_as_refused(line: Handlers) -> None:
    add_worker(line)
    add_worker(line, phone="+447700900555")
    add_worker(line, phone="+44 7700 900555")  # a phone two workers share
    assert answer(text(line, "help", sender=STRANGER)) == line_words.REFUSED
    assert answer(text(line, "CANCEL 1234", sender=STRANGER)) == line_words.REFUSED
    assert answer(text(line, "help", sender="+447700900555")) == line_words.REFUSED
    call = post(line, "/twilio/line/call", {"CallSid": sid("CA"), "From": STRANGER})
    assert call.status_code == 200 and "<Hangup />" in call.text and "<Record" not in call.text
    assert line_alerts(line) == []
    rows = refused(line)
    assert [r.topic for r in rows] == ["twilio/sms", "twilio/sms", "twilio/sms", "twilio/voice"]
    assert "not the registered phone of any worker" in rows[0].reason
    assert "several workers" in rows[2].reason
    assert STRANGER in rows[0].excerpt


def test_a_disabled_line_is_refused_by_ingest(line: Handlers) -> None:
    worker_id = add_worker(line)
    answer(text(line, "help"))
    with line.store.begin() as db:
        device = db.get(Device, f"line-{worker_id}")
        assert device is not None
        device.enabled = False
    assert answer(text(line, "help")) == line_words.REFUSED
    assert len(line_alerts(line)) == 1
    # Recorded by ingest, with its next batch of refusals.
    wait_until(lambda: refused(line) != [], timeout=5, what="the refusal recorded")
    assert [(r.device_id, r.reason) for r in refused(line)] == [
        (f"line-{worker_id}", "device is disabled")
    ]


def test_unsigned_webhooks_change_nothing(line: Handlers) -> None:
    add_worker(line)
    params = {"MessageSid": sid("SM"), "From": PHONE, "Body": "help"}
    assert post(line, "/twilio/sms", params, signed=False).status_code == 403
    call = {"CallSid": sid("CA"), "From": PHONE}
    assert post(line, "/twilio/line/call", call, signed=False).status_code == 403
    assert line_alerts(line) == []


def test_an_oversized_webhook_is_refused_before_it_is_parsed_and_changes_nothing(
    line: Handlers,
) -> None:
    add_worker(line)
    params = {"MessageSid": sid("SM"), "From": PHONE, "To": VIGIL_NUMBER, "Body": "help "}
    params["Body"] += "x" * MAX_FORM
    # Validly signed, and still refused: the limit comes before the form is read.
    assert post(line, "/twilio/sms", params).status_code == 413
    signature = RequestValidator(line.settings.twilio_auth_token).compute_signature(
        PUBLIC_URL + "/twilio/sms", params
    )
    body = urlencode(params).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    # Sent in chunks without a Content-Length, or with one that understates it.
    for length in ({}, {"Content-Length": "100"}):
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            **length,
        }
        assert line.http.post("/twilio/sms", content=chunks(), headers=headers).status_code == 413
    assert line_alerts(line) == []
    assert refused(line) == []
    # The same text at its usual size, signed, is taken.
    params["Body"] = "help"
    assert answer(post(line, "/twilio/sms", params)) == line_words.RECEIVED
    assert len(line_alerts(line)) == 1


def test_a_call_raises_an_alert_and_its_recording_becomes_playable_evidence(
    line: Handlers, fake: FakeTwilio
) -> None:
    worker_id = add_worker(line)
    call_sid = sid("CA")
    r = post(line, "/twilio/line/call", {"CallSid": call_sid, "From": PHONE, "To": VIGIL_NUMBER})
    assert r.status_code == 200, r.text
    assert f'recordingStatusCallback="{PUBLIC_URL}/twilio/line/recording"' in r.text
    assert 'timeout="0"' in r.text and line_words.GREETING in r.text
    [alert] = line_alerts(line)
    assert (alert.type, alert.device_alert_id) == ("red", f"call-{call_sid}")

    # A key pressed ends a recording: the line goes on listening in a next part.
    more = post(line, "/twilio/line/recorded?part=1", {"CallSid": call_sid})
    assert "<Record" in more.text and "part=2" in more.text

    audio = b"ID3\x03" + secrets.token_bytes(4000)  # stands for an MP3 of the call
    recording_sid = fake.add_recording(call_sid, audio, duration_s=12)
    status = {
        "AccountSid": fake.account_sid,
        "CallSid": call_sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": fake.resource(recording_sid)["media_url"],
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
        "RecordingSource": "RecordVerb",
    }
    done = post(line, "/twilio/line/recording", status)
    assert done.status_code == 204, done.text
    # Fetched through the twilio library: the resource, then its media.
    paths = [q.path for q in fake.requests if q.method == "GET"]
    assert any(p.endswith(f"/Recordings/{recording_sid}.json") for p in paths), paths
    assert any(p.endswith(f"/Recordings/{recording_sid}.mp3") for p in paths), paths

    with line.store.session() as db:
        ev = db.scalar(select(Evidence).where(Evidence.evidence_id == f"rec-{recording_sid}"))
        assert ev is not None
        assert ev.device_id == f"line-{worker_id}" and ev.alert_id == alert.id
        assert ev.sha256 == ev.uploaded_sha256 == hashlib.sha256(audio).hexdigest()
        assert (ev.codec, ev.duration_ms, ev.size_bytes) == ("mp3", 12000, len(audio))
        [uploaded] = db.scalars(
            select(EvidenceCustody).where(EvidenceCustody.evidence_pk == ev.id)
        ).all()
        assert uploaded.action == "uploaded"
        assert uploaded.details["source"] == {"twilio_recording": recording_sid, "call": call_sid}
        evidence_pk = ev.id

    # The console shows it with the alert and plays it, and the playing is on the record.
    ops = line.user("op-line")
    detail = line.http.get(f"/api/v1/alerts/{alert.id}", headers=ops).json()
    assert [e["evidence_id"] for e in detail["evidence"] if e["uploaded_at"]] == [
        f"rec-{recording_sid}"
    ]
    played = line.http.get(f"/api/v1/evidence/{evidence_pk}/audio", headers=ops)
    assert played.status_code == 200 and played.content == audio
    assert played.headers["content-type"] == "audio/mpeg"
    lead = line.user("lead-line", Role.SUPERVISOR)
    custody = line.http.get(f"/api/v1/evidence/{evidence_pk}/custody", headers=lead)
    assert [e["action"] for e in custody.json()["entries"]] == ["uploaded", "played"]

    # The same status again (a replay) changes nothing.
    assert post(line, "/twilio/line/recording", status).status_code == 409
