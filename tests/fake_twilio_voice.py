"""The fake Twilio's calls as Twilio runs them, driven by the test: a call created through the
REST API rings, is answered (its TwiML fetched from its Url, or its inline Twiml), and its
TwiML is run: <Say>, <Pause>, <Hangup>, and <Dial><Number> which places a second leg that
rings, is answered and bridged, or not; a call updated through the API (Status, Twiml, Url)
is hung up or sent to its new TwiML. Each step posts the webhooks Twilio would (status
callbacks, the <Dial> action, the recording's status), signed as Twilio signs them, to the
service under test (`reach`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.fake_twilio import FakeTwilio

# What a recorded conversation sounds like here: a few bytes standing for an MP3.
RECORDING = b"ID3\x04\x00" + bytes(range(256)) * 16
FINAL = ("completed", "busy", "no-answer", "failed", "canceled")


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature, written from Twilio's description (the URL, then each posted
    name and value in the names' order, HMAC-SHA1 with the auth token, base64), not
    through the twilio library, whose validator the service uses to check it."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Webhook:
    """One request the fake made to the service, and its answer."""

    url: str
    params: dict[str, str]
    status_code: int
    body: str


@dataclass
class _Leg:
    sid: str
    to: str
    from_: str
    status_callback: str | None
    events: list[str]
    url: str | None = None
    twiml: str | None = None
    parent: str | None = None  # the call whose <Dial> placed this leg
    status: str = "queued"
    seq: int = 0
    answered_at: float | None = None
    said: list[str] = field(default_factory=list)
    # While this leg's <Dial> runs: its attributes, the leg it placed, and the verbs after it.
    dial: dict[str, str] | None = None
    child: str | None = None
    rest: list[ET.Element] = field(default_factory=list)


class Voice:
    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self._lock = threading.Lock()
        self._legs: dict[str, _Leg] = {}
        self._reach: dict[str, httpx.Client] = {}
        self.webhooks: list[Webhook] = []
        self.recording_audio = RECORDING

    # -- set-up and inspection ---------------------------------------------------------------

    def reach(self, public_url: str, client: httpx.Client) -> None:
        """Deliver webhooks for URLs under `public_url` through `client` (a TestClient, or
        an httpx client on the served port), signed over the public URL as Twilio signs
        the URL it was given."""
        self._reach[public_url.rstrip("/")] = client

    def leg(self, sid: str) -> _Leg:
        """A call's leg as the fake runs it (created through the API, or by a <Dial>)."""
        with self._lock:
            if sid not in self._legs:
                self._legs[sid] = self._from_request(sid)
            return self._legs[sid]

    def said(self, sid: str) -> list[str]:
        """What <Say> spoke on the call, in order."""
        return list(self.leg(sid).said)

    def child(self, sid: str) -> str:
        """The sid of the leg the call's <Dial> placed."""
        child = self.leg(sid).child
        assert child is not None, f"call {sid} has dialled nobody"
        return child

    # -- what the people on the phones do ----------------------------------------------------

    def ring(self, sid: str) -> None:
        leg = self.leg(sid)
        if leg.status == "queued":
            self._status(leg, "initiated", "initiated")
        if leg.status == "initiated":
            self._status(leg, "ringing", "ringing")

    def answer(self, sid: str) -> None:
        """The phone is picked up: a leg Vigil placed runs its TwiML; a <Dial>'s leg is
        bridged to the call that dialled it."""
        leg = self.leg(sid)
        self.ring(sid)
        assert leg.status == "ringing", f"call {sid} is {leg.status}"
        leg.answered_at = time.monotonic()
        self._status(leg, "in-progress", "answered")
        if leg.parent is not None:
            return  # bridged: both sides talk until one hangs up
        if leg.twiml is not None:
            twiml = leg.twiml
        else:
            assert leg.url is not None
            twiml = self._post(leg.url, self._params(leg, CallStatus="in-progress")).body
        self._run(leg, list(ET.fromstring(twiml)))

    def decline(self, sid: str, status: str = "no-answer") -> None:
        """The phone is not answered: "no-answer", "busy" or "failed"."""
        leg = self.leg(sid)
        self.ring(sid)
        self._end(leg, status)
        if leg.parent is not None:
            self._dial_over(self.leg(leg.parent), status, 0)

    def hang_up(self, sid: str, talked_s: int | None = None) -> None:
        """One side hangs up (the conversation took `talked_s`, or as long as it did)."""
        leg = self.leg(sid)
        if leg.parent is not None:
            parent = self.leg(leg.parent)
            self._end(leg, "completed", talked_s)
            self._dial_over(parent, "completed", self._duration(leg, talked_s))
            return
        if leg.child is not None:
            child = self.leg(leg.child)
            bridged = child.status == "in-progress"
            self._end(child, "completed" if bridged else "canceled", talked_s)
            word = "completed" if bridged else "canceled"
            # The caller has gone: the action is told, but nothing it answers is run.
            self._dial_over(leg, word, self._duration(child, talked_s), run=False)
        self._end(leg, "completed")

    # -- what the account does through the REST API ------------------------------------------

    def update(self, sid: str, params: dict[str, list[str]]) -> str | None:
        """POST Calls/{sid}.json, as Twilio's Call resource documents it: Status "canceled"
        ends a call not yet answered (an answered one is left); "completed" hangs up a call
        whatever its state (one not answered ends "canceled"); Twiml (or Url) makes an
        answered call run that TwiML at once, leaving a <Dial> under way (the phone it
        rings, or the person bridged, is hung up; its action is not asked, since the call
        has moved on). A call already over is left as it is. Returns why Twilio refuses
        (answered 400), or None."""
        leg = self.leg(sid)
        status, twiml, url = (
            values[0] if (values := params.get(name)) else None
            for name in ("Status", "Twiml", "Url")
        )
        if status is not None:
            if status not in ("canceled", "completed"):
                return f"Status must be canceled or completed, not {status!r}"
            if leg.status in FINAL or (status == "canceled" and leg.status == "in-progress"):
                return None
            if leg.parent is not None:  # a <Dial>'s leg: as if that phone hung up
                if leg.status == "in-progress":
                    self.hang_up(sid)
                else:
                    self.decline(sid, "canceled")
            elif leg.status == "in-progress":
                self.hang_up(sid)
            else:
                self._end(leg, "canceled")
            return None
        if twiml is None and url is None:
            return None
        if leg.status != "in-progress":
            return "Call is not in-progress. Cannot redirect."
        if leg.dial is not None:
            self._leave_dial(leg)
        if twiml is None:
            assert url is not None
            twiml = self._post(url, self._params(leg)).body
        self._run(leg, list(ET.fromstring(twiml)))
        return None

    # -- Twilio's side -----------------------------------------------------------------------

    def _leave_dial(self, leg: _Leg) -> None:
        """The call is sent elsewhere while its <Dial> runs: the other phone is hung up."""
        child = self.leg(leg.child or "")
        word = "completed" if child.status == "in-progress" else "canceled"
        seconds = self._duration(child, None)
        self._end(child, word)
        self._dial_over(leg, word, seconds, run=False, action=False)

    def _from_request(self, sid: str) -> _Leg:
        made = next((r for r in self.fake.calls if r.sid == sid), None)
        assert made is not None, f"no call {sid} was created"
        return _Leg(
            sid=sid,
            to=made.param("To") or "",
            from_=made.param("From") or "",
            status_callback=made.param("StatusCallback"),
            events=made.params.get("StatusCallbackEvent") or ["completed"],
            url=made.param("Url"),
            twiml=made.param("Twiml"),
        )

    def _params(self, leg: _Leg, **extra: str) -> dict[str, str]:
        params = {
            "AccountSid": self.fake.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": leg.sid,
            "CallStatus": leg.status,
            "Direction": "outbound-dial" if leg.parent else "outbound-api",
            "From": leg.from_,
            "To": leg.to,
        }
        if leg.parent:
            params["ParentCallSid"] = leg.parent
        params.update(extra)
        return params

    def _status(self, leg: _Leg, status: str, event: str, **extra: str) -> None:
        leg.status = status
        self.fake.set_status(leg.sid, status)
        if leg.status_callback is None or event not in leg.events:
            return
        leg.seq += 1
        params = self._params(
            leg,
            CallbackSource="call-progress-events",
            SequenceNumber=str(leg.seq - 1),
            Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            **extra,
        )
        self._post(leg.status_callback, params)

    def _duration(self, leg: _Leg, talked_s: int | None) -> int:
        if talked_s is not None:
            return talked_s
        return 0 if leg.answered_at is None else round(time.monotonic() - leg.answered_at)

    def _end(self, leg: _Leg, status: str, talked_s: int | None = None) -> None:
        if leg.status in FINAL:
            return
        seconds = str(self._duration(leg, talked_s))
        self._status(leg, status, "completed", CallDuration=seconds, Duration=seconds)

    def _run(self, leg: _Leg, verbs: list[ET.Element]) -> None:
        """Run TwiML verbs until the call ends or waits (a <Dial> ringing or bridged)."""
        while verbs and leg.status == "in-progress":
            verb = verbs.pop(0)
            if verb.tag == "Say":
                leg.said.append(verb.text or "")
            elif verb.tag == "Hangup":
                self._end(leg, "completed")
            elif verb.tag == "Dial":
                self._dial(leg, verb, verbs)
                return
            elif verb.tag != "Pause":
                raise AssertionError(f"the fake does not run <{verb.tag}>")
        if leg.status == "in-progress":
            self._end(leg, "completed")  # no more TwiML: Twilio hangs up

    def _dial(self, leg: _Leg, dial: ET.Element, rest: list[ET.Element]) -> None:
        numbers = [n for n in dial if n.tag == "Number"]
        assert len(numbers) == 1, "the fake dials one <Number>"
        number, caller = numbers[0], dial.get("callerId") or leg.from_
        made = self.fake._create("call", {"To": [(number.text or "").strip()], "From": [caller]})
        child = _Leg(
            sid=made["sid"],
            to=(number.text or "").strip(),
            from_=caller,
            status_callback=number.get("statusCallback"),
            events=(number.get("statusCallbackEvent") or "completed").split(),
            parent=leg.sid,
        )
        self.fake.set_status(
            child.sid, "queued", parent_call_sid=leg.sid, direction="outbound-dial"
        )
        with self._lock:
            self._legs[child.sid] = child
        leg.dial, leg.child, leg.rest = dict(dial.attrib), child.sid, rest
        self.ring(child.sid)

    def _dial_over(
        self, leg: _Leg, status: str, seconds: int, *, run: bool = True, action: bool = True
    ) -> None:
        """The <Dial>'s leg ended: its recording, its action, then the TwiML after it."""
        dial, child = leg.dial or {}, leg.child or ""
        leg.dial = None
        recording = None
        if status == "completed" and dial.get("record", "do-not-record") != "do-not-record":
            dual = dial["record"].endswith("-dual")
            recording = self.fake.add_recording(
                leg.sid, self.recording_audio, seconds, channels=2 if dual else 1, source="DialVerb"
            )
        verbs = leg.rest
        if action and "action" in dial:
            extra = {"DialCallSid": child, "DialCallStatus": status}
            if status == "completed":
                extra["DialCallDuration"] = str(seconds)
            if recording is not None:
                extra |= {"RecordingSid": recording, "RecordingUrl": self._media(recording)}
            answer = self._post(dial["action"], self._params(leg, **extra))
            verbs = list(ET.fromstring(answer.body)) if answer.status_code == 200 else []
        if run:
            self._run(leg, verbs)
        if recording is not None and "recordingStatusCallback" in dial:
            self._post(
                dial["recordingStatusCallback"],
                {
                    "AccountSid": self.fake.account_sid,
                    "CallSid": leg.sid,
                    "RecordingSid": recording,
                    "RecordingUrl": self._media(recording),
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(seconds),
                    "RecordingChannels": "2" if dial["record"].endswith("-dual") else "1",
                    "RecordingSource": "DialVerb",
                    "RecordingStartTime": time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                },
            )

    def _media(self, recording_sid: str) -> str:
        return str(self.fake.resource(recording_sid)["media_url"])

    def _post(self, url: str, params: dict[str, str]) -> Webhook:
        base = next((b for b in self._reach if url.startswith(b + "/")), None)
        assert base is not None, f"the fake cannot reach {url}: call voice.reach() first"
        sent = self._reach[base].post(
            url[len(base) :],
            data=params,
            headers={"X-Twilio-Signature": signature(self.fake.auth_token, url, params)},
        )
        hook = Webhook(url, params, sent.status_code, sent.text)
        with self._lock:
            self.webhooks.append(hook)
        return hook

    def posted(self, part: str) -> list[Webhook]:
        """The webhooks whose URL has `part` in it."""
        with self._lock:
            return [w for w in self.webhooks if part in w.url]


def dial_of(twiml: str) -> dict[str, Any]:
    """The attributes of TwiML's <Dial> and its <Number>, for tests that read the TwiML."""
    dial = ET.fromstring(twiml).find("Dial")
    assert dial is not None, twiml
    number = dial.find("Number")
    return {**dial.attrib, "number": None if number is None else number.text}
