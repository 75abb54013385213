"""The fake Twilio's calls as Twilio runs them (tests/fake_twilio_voice.py), against a small
app standing for the service: created through the real twilio library, answered, their
TwiML fetched, a <Dial> placing and bridging a second leg, the webhooks signed as the twilio
library's RequestValidator checks them, the recording readable through the library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from tests.fake_twilio import FakeTwilio
from tests.fake_twilio_voice import RECORDING

PUBLIC = "https://service.example.org"
OPERATOR, OTHER, FROM = "+447700900555", "+447700900001", "+15005550006"


class Service:
    """Records what the fake posted, checks each signature, and answers TwiML."""

    def __init__(self, token: str, record: bool = True) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.app = FastAPI()
        validator = RequestValidator(token)

        @self.app.post("/{name}")
        async def hook(name: str, request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            url = f"{PUBLIC}{request.url.path}" + (
                f"?{request.url.query}" if request.url.query else ""
            )
            signature = request.headers.get("X-Twilio-Signature", "")
            assert validator.validate(url, form, signature), (url, form)
            self.posts.append((name + ("?" + request.url.query if request.url.query else ""), form))
            if name == "answer":
                r = VoiceResponse()
                r.say("Connecting you.")
                options = {"action": f"{PUBLIC}/dialled", "caller_id": FROM}
                if record:
                    options |= {
                        "record": "record-from-answer-dual",
                        "recording_status_callback": f"{PUBLIC}/recording",
                    }
                dial = Dial(**options)
                dial.number(
                    OTHER,
                    status_callback=f"{PUBLIC}/leg?n=2",
                    status_callback_event="answered completed",
                )
                r.append(dial)
                return Response(str(r), media_type="application/xml")
            if name == "dialled":
                r = VoiceResponse()
                r.say(f"Dial {form['DialCallStatus']}.")
                r.hangup()
                return Response(str(r), media_type="application/xml")
            return Response(status_code=204)

    def named(self, name: str) -> list[dict[str, str]]:
        return [form for n, form in self.posts if n == name]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


def placed(fake: FakeTwilio, service: Service) -> tuple[Client, str]:
    fake.voice.reach(PUBLIC, TestClient(service.app, base_url="http://service"))
    client = Client(fake.account_sid, fake.auth_token)
    client.api.base_url = fake.url
    call = client.calls.create(
        to=OPERATOR,
        from_=FROM,
        url=f"{PUBLIC}/answer",
        status_callback=f"{PUBLIC}/leg?n=1",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert call.sid is not None
    return client, call.sid


def test_a_call_is_answered_dials_a_second_leg_is_bridged_and_recorded(fake: FakeTwilio) -> None:
    service = Service(fake.auth_token)
    client, sid = placed(fake, service)
    fake.voice.answer(sid)
    assert [f["CallStatus"] for f in service.named("leg?n=1")] == [
        "initiated",
        "ringing",
        "in-progress",
    ]
    assert service.named("answer")[0]["CallStatus"] == "in-progress"
    assert fake.voice.said(sid) == ["Connecting you."]
    child = fake.voice.child(sid)
    fetched = client.calls(child).fetch()
    assert (fetched.to, fetched.from_formatted, fetched.parent_call_sid, fetched.direction) == (
        OTHER,
        FROM,
        sid,
        "outbound-dial",
    )
    assert service.named("leg?n=2") == []  # it rings, and "ringing" was not asked for

    fake.voice.answer(child)
    fake.voice.hang_up(child, talked_s=42)
    other = service.named("leg?n=2")
    assert [(f["CallStatus"], f["ParentCallSid"]) for f in other] == [
        ("in-progress", sid),
        ("completed", sid),
    ]
    assert other[-1]["CallDuration"] == "42"
    action = service.named("dialled")[0]
    assert (action["DialCallStatus"], action["DialCallSid"], action["DialCallDuration"]) == (
        "completed",
        child,
        "42",
    )
    assert fake.voice.said(sid)[-1] == "Dial completed."
    assert service.named("leg?n=1")[-1]["CallStatus"] == "completed"
    assert client.calls(sid).fetch().status == "completed"

    news = service.named("recording")[0]
    assert (news["RecordingStatus"], news["CallSid"], news["RecordingSource"]) == (
        "completed",
        sid,
        "DialVerb",
    )
    recording = client.recordings(news["RecordingSid"]).fetch()
    assert (recording.call_sid, recording.channels, recording.duration) == (sid, 2, "42")
    assert news["RecordingUrl"] == recording.media_url
    assert fake._state.media[recording.sid] == RECORDING


def test_a_second_leg_not_answered_and_a_caller_who_hangs_up_first(fake: FakeTwilio) -> None:
    service = Service(fake.auth_token, record=False)
    _, sid = placed(fake, service)
    fake.voice.answer(sid)
    fake.voice.decline(fake.voice.child(sid), "busy")
    assert service.named("dialled")[0]["DialCallStatus"] == "busy"
    assert "DialCallDuration" not in service.named("dialled")[0]
    assert service.named("leg?n=2")[-1]["CallStatus"] == "busy"
    assert fake.voice.said(sid)[-1] == "Dial busy."
    assert service.named("recording") == []

    _, sid = placed(fake, service)
    fake.voice.answer(sid)
    fake.voice.hang_up(sid)  # while the other phone still rings
    assert service.named("dialled")[-1]["DialCallStatus"] == "canceled"
    assert fake.voice.said(sid) == ["Connecting you."]  # the action's answer is not run
    assert service.named("leg?n=1")[-1]["CallStatus"] == "completed"

    _, sid = placed(fake, service)
    fake.voice.decline(sid, "no-answer")
    assert service.named("leg?n=1")[-1]["CallStatus"] == "no-answer"
    assert fake.voice.leg(sid).child is None


def test_a_call_updated_through_the_api_leaves_its_dial_or_is_hung_up(fake: FakeTwilio) -> None:
    """client.calls(sid).update(...), as Twilio's Call resource documents it."""
    service = Service(fake.auth_token, record=False)
    client, sid = placed(fake, service)
    fake.voice.answer(sid)
    child = fake.voice.child(sid)  # the other phone rings
    updated = client.calls(sid).update(twiml="<Response><Say>Stopped.</Say><Hangup/></Response>")
    assert updated.sid == sid
    # The phone the <Dial> rang stops; the call runs the new TwiML, and the <Dial>'s action
    # is not asked (the call has left it).
    assert client.calls(child).fetch().status == "canceled"
    assert service.named("leg?n=2")[-1]["CallStatus"] == "canceled"
    assert service.named("dialled") == []
    assert fake.voice.said(sid) == ["Connecting you.", "Stopped."]
    assert client.calls(sid).fetch().status == "completed"
    assert service.named("leg?n=1")[-1]["CallStatus"] == "completed"
    # A call that is over cannot be sent elsewhere (Twilio's 21220); hanging it up again
    # changes nothing.
    with pytest.raises(TwilioRestException) as refused:
        client.calls(sid).update(twiml="<Response><Say>Again.</Say></Response>")
    assert (refused.value.status, refused.value.code) == (400, 21220)
    assert client.calls(sid).update(status="completed").status == "completed"

    # Hung up while the operator's own phone still rings: it ends "canceled", nobody dialled.
    _, ringing = placed(fake, service)
    fake.voice.ring(ringing)
    assert client.calls(ringing).update(status="completed").status == "canceled"
    assert service.named("leg?n=1")[-1]["CallStatus"] == "canceled"
    assert fake.voice.leg(ringing).child is None

    # Hung up while bridged: both phones hang up; "canceled" would have left it alone.
    _, talking = placed(fake, service)
    fake.voice.answer(talking)
    other = fake.voice.child(talking)
    fake.voice.answer(other)
    assert client.calls(talking).update(status="canceled").status == "in-progress"
    assert client.calls(talking).update(status="completed").status == "completed"
    assert client.calls(other).fetch().status == "completed"
    assert service.named("dialled")[-1]["DialCallStatus"] == "completed"
