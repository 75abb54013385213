"""The worker line: a worker texts or calls the Vigil number from their registered phone when
mobile data fails, and gets a red alert (docs/integrations.md, "SMS and a voice panic line").

Texts and calls are translated into protocol-v1 messages of the worker's line device
(gateways/line_workers.py) and handed to ingest (`Ingest.submit`), which applies every rule
to them once: one alert per (device, alert id), whatever the number of Twilio's retries,
since the alert id is made from Twilio's MessageSid or CallSid; the PINs, duress and the
wrong-PIN lockout for CANCEL <PIN>; refusals recorded in refused_messages. Twilio is answered
only once ingest has stored (or refused) the message; if that takes longer than
VIGIL_LINE_WAIT_S, 503, and Twilio may try again.

Which texts are the line's is decided in one place, escalation's SMS route (a contact's
reply or a worker's text): this module installs itself there as `app.state.worker_line`.
Every webhook is signed (escalation.inbound.signed_form), and a replayed one refused.
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from escalation.inbound import SignedForm, first_time
from escalation.models import TwilioRequestSeen
from gateways import line_recordings, line_words, line_workers
from gateways.line_workers import Caller, NotAWorker
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.devices.models import DeviceCommand
from monitor.ingest import refusals
from monitor.ingest.runner import Ingest
from monitor.protocol import Refusal

XML = "application/xml"
# Twilio's sids: two letters and 32 hex digits ("SM...", "CA...", "RE..."). Checked strictly:
# an alert id is made of one, and must stay within the protocol's 64 characters.
TWILIO_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
# "CANCEL 4821", "cancel: 4821", "Cancel PIN 4821". The PIN's own rule (4 to 8 digits) is the
# protocol's: anything else after CANCEL is handed on, and refused there.
CANCEL = re.compile(r"^\s*cancel\b[\s:#-]*(?:pin\b[\s:#-]*)?(?P<pin>\S*)\s*$", re.IGNORECASE)
# Only what could be a PIN is handed on (PROTOCOL.md: 4 to 8 digits); "CANCEL" alone, or
# with words, is answered with how to cancel, and counts as no wrong PIN.
PIN = re.compile(r"^[0-9]{4,8}$")
NOTE_CHARS = 500  # an alert's note, at most (PROTOCOL.md)


def sid(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not TWILIO_SID.match(value):
        raise HTTPException(422, f"no valid {name} was posted")
    return value


def now_ms() -> int:
    return int(time.time() * 1000)


def seen_before(db: Session, key: str) -> bool:
    return db.get(TwilioRequestSeen, key) is not None


class Line:
    """What the line does with a text or a call; escalation's SMS route hands it the texts
    that are not a contact's reply (escalation.inbound.WorkerLine)."""

    def __init__(self, app: FastAPI, settings: Settings, store: Store) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.base_url = settings.public_url.rstrip("/")

    @property
    def ingest(self) -> Ingest:
        ingest: Ingest = self.app.state.ingest
        return ingest

    def is_workers_phone(self, number: str) -> bool:
        with self.store.session() as db:
            return bool(line_workers.workers_with(db, number))

    # -- handing messages to ingest --------------------------------------------------------

    def submit(self, device_id: str, suffix: str, body: dict[str, Any]) -> None:
        """A protocol-v1 message of the line device, handed to ingest; returns once it is
        stored or refused, else 503 (Twilio may try again: the message is keyed so that a
        second copy changes nothing)."""
        payload = json.dumps({"v": 1, "ts": now_ms(), **body}).encode()
        handed = self.ingest.submit(f"vigil/v1/{device_id}/{suffix}", payload)
        if not handed.wait(self.settings.line_wait_s) or handed.retry_later:
            raise HTTPException(503, "not stored in time: try again", headers={"Retry-After": "1"})

    def caller(self, number: str, channel: str, what: str, key: str | None) -> Caller | None:
        """The worker calling or texting, with their line device; None when the number is no
        single worker's phone: then the attempt is recorded as refused (as ingest records
        a message from an unknown device), once, in the transaction that notes `key` seen
        (None: noted already)."""
        try:
            with self.store.begin() as db:
                found = line_workers.caller(db, number)
                line_workers.ensure_device(db, found.worker_id)
                return found
        except NotAWorker as no:
            with self.store.begin() as db:
                if key is not None:
                    first_time(db, key)
                refused = refusals.Refused(
                    Refusal(no.code, f"{channel} from {number[:32]}: {no.reason}"),
                    f"twilio/{channel}",
                    what.encode(),
                    utcnow(),
                )
                refusals.refuse(db, refused)
            return None

    # -- texts -----------------------------------------------------------------------------

    def sms(self, form: dict[str, str]) -> Response:
        message_sid = sid(form, "MessageSid")
        sender, body = form.get("From", "")[:32], form.get("Body", "").strip()
        key = f"sms:{message_sid}"
        cancel = CANCEL.match(body)
        if cancel is None:
            with self.store.session() as db:
                if seen_before(db, key):
                    raise HTTPException(409, "this request was received before: a replay")
        else:
            # A cancel is noted seen before it is handed on: a replay must never reach the
            # worker's next alert. (Should ingest not store it in time, Twilio's retry is
            # refused too; the alert goes on, which is the safe way to fail.)
            with self.store.begin() as db:
                first_time(db, key)
        what = f"SMS from {sender}: {body}"[:300]
        found = self.caller(sender, "sms", what, None if cancel else key)
        if found is None:
            return Response(line_words.sms(line_words.REFUSED), media_type=XML)
        if cancel is not None:
            return self._cancel(found, cancel["pin"])
        alert_id = f"sms-{message_sid}"
        note = f"SMS to the Vigil number: {body}" if body else "SMS to the Vigil number"
        self.submit(
            found.device_id, "alert", {"id": alert_id, "type": "red", "note": note[:NOTE_CHARS]}
        )
        with self.store.begin() as db:
            stored = alerts.find_device_alert(db, found.device_id, alert_id) is not None
            first_time(db, key)
        text = line_words.RECEIVED if stored else line_words.REFUSED
        return Response(line_words.sms(text), media_type=XML)

    def _cancel(self, found: Caller, pin: str) -> Response:
        """CANCEL <PIN>: a cancel of the line's latest alert, answered with the command
        monitor queued for the device (line_words: the duress PIN's is the cancel PIN's)."""
        with self.store.session() as db:
            # The latest alert the worker raised by text or call, open or not (a duress PIN on
            # one that is over raises a new duress alert, as on a badge). Not one the service
            # raised (a duress alert after such a cancel has no device alert id): aiming at it
            # would answer the next CANCEL differently, and tell duress apart.
            target = db.scalar(
                select(Alert.device_alert_id)
                .where(Alert.device_id == found.device_id, Alert.device_alert_id.is_not(None))
                .order_by(Alert.id.desc())
                .limit(1)
            )
            after = db.scalar(
                select(func.max(DeviceCommand.id)).where(DeviceCommand.device_id == found.device_id)
            )
        if not PIN.match(pin):
            return Response(line_words.sms(line_words.HOW_TO_CANCEL), media_type=XML)
        if target is None:
            return Response(line_words.sms(line_words.NO_ALERT), media_type=XML)
        self.submit(found.device_id, "alert/cancel", {"alert_id": target, "pin": pin})
        with self.store.session() as db:
            command = answered(db, found.device_id, target, after or 0)
        return Response(line_words.sms(line_words.cancel_answer(command)), media_type=XML)

    # -- calls -----------------------------------------------------------------------------

    def call(self, form: dict[str, str]) -> Response:
        call_sid = sid(form, "CallSid")
        caller = form.get("From", "")[:32]
        key = f"call:{call_sid}"
        with self.store.session() as db:
            if seen_before(db, key):
                raise HTTPException(409, "this request was received before: a replay")
        found = self.caller(caller, "voice", f"call from {caller}", key)
        if found is None:
            return Response(line_words.refused_call(), media_type=XML)
        alert_id = f"call-{call_sid}"
        note = "Call to the Vigil number from the worker's registered phone, recorded"
        self.submit(found.device_id, "alert", {"id": alert_id, "type": "red", "note": note})
        with self.store.begin() as db:
            stored = alerts.find_device_alert(db, found.device_id, alert_id) is not None
            first_time(db, key)
        if not stored:
            return Response(line_words.refused_call(), media_type=XML)
        twiml = line_words.record(self.base_url, self.settings.line_recording_max_s, part=1)
        return Response(twiml, media_type=XML)


def answered(db: Session, device_id: str, alert_id: str, after: int) -> str | None:
    """The answer monitor queued for the device to a cancel of `alert_id` (in the outbox,
    after row `after`): alert_cancelled or cancel_rejected; None if it queued none."""
    rows = db.scalars(
        select(DeviceCommand)
        .where(
            DeviceCommand.device_id == device_id,
            DeviceCommand.id > after,
            DeviceCommand.type.in_(line_words.CANCEL_ANSWERS),
        )
        .order_by(DeviceCommand.id.desc())
    )
    return next((r.type for r in rows if r.payload.get("alert_id") == alert_id), None)


router = APIRouter(prefix="/twilio/line", tags=["twilio"])


def _line(request: Request) -> Line:
    line: Line = request.app.state.worker_line
    return line


@router.post("/call", response_class=Response)
def call(form: SignedForm, request: Request) -> Response:
    """The Vigil number's voice webhook: a worker calling raises a red alert, and the call
    is recorded."""
    return _line(request).call(form)


@router.post("/recorded", response_class=Response)
def recorded(
    form: SignedForm, request: Request, part: Annotated[int, Query(ge=1, le=99)] = 1
) -> Response:
    """A recording of the call ended (a key, the time limit, the caller hung up): what next.
    Changes nothing; the recording itself comes by /twilio/line/recording."""
    line = _line(request)
    twiml = line_words.after_recording(line.base_url, line.settings.line_recording_max_s, part)
    return Response(twiml, media_type=XML)


@router.post("/recording", status_code=204, response_class=Response)
def recording(form: SignedForm, request: Request) -> Response:
    """Twilio's recording status: a completed recording is fetched, stored as the alert's
    audio evidence, and referenced by an `evidence` message of the line device."""
    line = _line(request)
    line_recordings.take(
        line.store,
        request.app.state.evidence_store,
        line.settings,
        submit=line.submit,
        recording_sid=sid(form, "RecordingSid"),
        call_sid=sid(form, "CallSid"),
        status=form.get("RecordingStatus", "")[:16],
        duration_s=form.get("RecordingDuration", ""),
    )
    return Response(status_code=204)


def install(app: FastAPI, context: dict[str, Any]) -> None:
    app.state.worker_line = Line(app, context["settings"], context["store"])
    app.include_router(router)
