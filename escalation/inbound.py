"""Twilio's webhooks: a key pressed on a call, an SMS reply, delivery statuses.

Every request must carry a valid X-Twilio-Signature, computed by Twilio over the public URL
it called and the form it posted; anything else is answered 403 and changes nothing. The
signature covers no time, so each request is also recorded by what makes it unique (its
MessageSid or CallSid...) in the transaction that acts on it: the same request again, a
replay, is answered 409 and changes nothing either.
"""

from __future__ import annotations

import re
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from starlette.types import Message
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from escalation import delivery, voice
from escalation.channels.sms import Sms
from escalation.channels.voice import Voice
from escalation.models import Notification, RecipientKind, TwilioRequestSeen
from escalation.summary import ACK_DIGIT, REPEAT_DIGIT
from escalation.timeline import EntryKind
from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.db import utcnow
from monitor.deps import RowId, SessionDep, SettingsDep, StoreDep
from monitor.events import Kind

# "1", "ACK" or "YES", optionally naming the alert: "ACK 42" takes alert #42.
ACK_REPLY = re.compile(r"^(?:1|ACK|YES)(?:\s+#?(\d{1,12}))?$", re.IGNORECASE)
XML = "application/xml"
# Twilio's webhook bodies are a few KiB. The form is read before its signature can be
# checked, and Starlette alone would parse up to 1,000 fields of 1 MB each for anyone: a
# body over this is refused with 413 unread (by its Content-Length) or as soon as reading
# it passes the limit (without one, or with a false one).
MAX_FORM = 64 * 1024


async def signed_form(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The posted form, once its signature checks out against the configured public URL."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM:
        raise HTTPException(413, f"a Twilio webhook is limited to {MAX_FORM} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise HTTPException(413, f"a Twilio webhook is limited to {MAX_FORM} bytes")

    async def read_again() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    # Parsed by Starlette's own form parser, from the bytes read.
    form = await Request(request.scope, read_again).form()
    params = {key: str(value) for key, value in form.multi_items()}
    url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature", "")
    token = settings.twilio_auth_token
    if not token or not signature or not RequestValidator(token).validate(url, params, signature):
        raise HTTPException(403, "bad or missing X-Twilio-Signature")
    return params


SignedForm = Annotated[dict[str, str], Depends(signed_form)]
router = APIRouter(prefix="/twilio", tags=["twilio"])
# Twilio's sids are 34 characters ("SM" or "CA" and 32 hex digits).
SID = re.compile(r"^[A-Za-z]{2}[0-9A-Za-z]{1,62}$")


def sid_of(form: dict[str, str], *names: str) -> str:
    """The first of `names` that was posted, as Twilio writes sids; else 422."""
    sid = next((form[name] for name in names if form.get(name)), "")
    if not SID.match(sid):
        raise HTTPException(422, f"no valid {' or '.join(names)} was posted")
    return sid


def first_time(db: Session, key: str) -> None:
    """Record that the request `key` names is acted on, in the transaction that acts on it;
    409 if it was before (a replay). Two replicas given the same request at once: the
    second waits on the first's row, then finds it."""
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    added = db.scalar(
        dialect.insert(TwilioRequestSeen)
        .values(key=key, seen_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(TwilioRequestSeen.key)
    )
    if added is None:
        raise HTTPException(409, "this request was received before: a replay changes nothing")


def _notification(db: Session, notification_id: int) -> tuple[Notification, Alert]:
    try:
        return delivery.locked(db, notification_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


def _wake(request: Request) -> None:
    engine = getattr(request.app.state, "escalation", None)
    if engine is not None:
        engine.wake()


def _taken_by(alert: Alert) -> str:
    return (alert.acknowledged_by or "an operator").replace("user:", "")


@router.post("/voice/{notification_id}/gather", response_class=Response)
def gather(
    notification_id: RowId,
    form: SignedForm,
    db: SessionDep,
    settings: SettingsDep,
    g: Annotated[str, Query(pattern=r"^[0-9a-f]{0,32}$")] = "",
) -> Response:
    """The key a called person pressed (nothing pressed: Twilio does not call this). `g`
    is the nonce of voice.gather_url; a call placed before there was one has none, and
    then takes one key press only."""
    first_time(db, f"gather:{sid_of(form, 'CallSid')}:{g}")
    n, alert = _notification(db, notification_id)
    digits = form.get("Digits", "")[:16]
    actor = f"{n.recipient} ({n.address})"
    if delivery.silenced(db, n, alert):
        alerts.record(
            db,
            alert,
            EntryKind.KEYPRESS,
            actor,
            f"{n.recipient} pressed {digits or 'nothing'} on the call (duress: ignored)",
            notification=n.id,
            digits=digits,
        )
        return Response(voice.goodbye(), media_type=XML)
    if digits == ACK_DIGIT:
        taken = delivery.acknowledge_by(db, n, alert, via=Voice.name)
        alerts.record(
            db,
            alert,
            EntryKind.KEYPRESS,
            actor,
            f"{n.recipient} pressed 1 on the call" + ("" if taken else " (alert already taken)"),
            notification=n.id,
            digits=digits,
        )
        alerts.announce(db, Kind.ALERT_ESCALATION, alert)
        if taken:
            return Response(
                voice.acknowledged(n.recipient_kind == RecipientKind.WORKER.value, alert.duress),
                media_type=XML,
            )
        return Response(voice.already_handled(_taken_by(alert)), media_type=XML)
    alerts.record(
        db,
        alert,
        EntryKind.KEYPRESS,
        actor,
        f"{n.recipient} pressed {digits or 'nothing'} on the call"
        + (": hearing it again" if digits == REPEAT_DIGIT else ": not acknowledged"),
        notification=n.id,
        digits=digits,
    )
    alerts.announce(db, Kind.ALERT_ESCALATION, alert)
    if digits == REPEAT_DIGIT:
        return Response(voice.call(settings.public_url, n.id, n.body), media_type=XML)
    return Response(voice.not_acknowledged(), media_type=XML)


@router.post("/status/{notification_id}", status_code=204, response_class=Response)
def delivery_status(
    notification_id: RowId, form: SignedForm, db: SessionDep, request: Request
) -> Response:
    status = (form.get("MessageStatus") or form.get("CallStatus") or "").lower()[:16]
    if not status:
        raise HTTPException(422, "neither MessageStatus nor CallStatus was posted")
    sid = sid_of(form, "MessageSid", "CallSid")
    first_time(db, f"status:{sid}:{status}")
    n, alert = _notification(db, notification_id)
    if delivery.record_status(db, n, alert, status, sid):
        _wake(request)
    return Response(status_code=204)


class WorkerLine(Protocol):
    """The Vigil number's other texters: workers asking for help from their registered
    phones, and numbers Vigil does not know (gateways/line.py installs one as
    app.state.worker_line; without it, this route answers contacts only)."""

    def is_workers_phone(self, number: str) -> bool: ...

    def sms(self, form: dict[str, str]) -> Response:
        """Answer a text that is not a contact's reply (it takes its own transactions)."""
        ...


@router.post("/sms", response_class=Response)
def sms(form: SignedForm, request: Request, store: StoreDep) -> Response:
    """A text to the Vigil number. One number serves contacts answering our SMS and workers
    texting for help; who a text is for is decided here, by its sender, and only here:

    1. "1", "ACK" or "YES" (or "ACK 42") from a number Vigil has texted: a contact's reply;
    2. else, from a worker's registered phone: the worker line (a red alert, CANCEL <PIN>);
    3. else, from a number Vigil has texted: a contact's reply (told how to answer);
    4. else: an unknown number, which the worker line refuses.
    """
    sender, words = form.get("From", "")[:32], form.get("Body", "").strip()
    sid_of(form, "MessageSid")
    line: WorkerLine | None = getattr(request.app.state, "worker_line", None)
    if line is not None:
        with store.session() as db:
            texted = delivery.sms_sent_to(db, sender, None)[0] is not None
        if not (texted and ACK_REPLY.match(words)) and (
            line.is_workers_phone(sender) or not texted
        ):
            # Outside any transaction here: the line waits for ingest to store the alert,
            # which on SQLite needs the write turn a transaction would hold.
            return line.sms(form)
    with store.begin() as db:
        return contact_reply(db, form)


def contact_reply(db: Session, form: dict[str, str]) -> Response:
    """A reply to our SMS: 1, ACK or YES takes the latest alert sent to that number that
    still waits for someone ("ACK 42" names one)."""
    sender, words = form.get("From", "")[:32], form.get("Body", "").strip()
    first_time(db, f"sms:{sid_of(form, 'MessageSid')}")
    reply = MessagingResponse()
    match = ACK_REPLY.match(words)
    named = int(match[1]) if match and match[1] else None
    n_id, others = delivery.sms_sent_to(db, sender, named)
    if n_id is None:
        reply.message(
            f"Vigil sent no SMS about alert #{named} to this number."
            if named
            else "Vigil has sent no alert to this number."
        )
        return Response(str(reply), media_type=XML)
    n, alert = _notification(db, n_id)
    actor = f"{n.recipient} ({n.address})"
    if delivery.silenced(db, n, alert):
        alerts.record(
            db, alert, EntryKind.SMS_REPLY, actor, f"{n.recipient} replied (duress: ignored)"
        )
        return Response(str(MessagingResponse()), media_type=XML)  # no answer at all
    if match:
        taken = delivery.acknowledge_by(db, n, alert, via=Sms.name)
        text = f"{n.recipient} replied {words!r} to the SMS" + (
            "" if taken else " (alert already taken)"
        )
        if taken:
            answer = f"Thank you: you are handling alert #{alert.id}." + (
                " The worker is told help is coming." if rules.may_tell_device(alert) else ""
            )
        else:
            answer = f"Alert #{alert.id} is already {alert.state}" + (
                f" by {_taken_by(alert)}." if alert.acknowledged_by else "."
            )
        if others:
            answer += " Still waiting: " + ", ".join(f"#{o}" for o in others[:5])
            answer += f". Reply ACK {others[0]} to take one."
    else:
        text = f"{n.recipient} replied to the SMS: {words[:500]!r} (not an acknowledgement)"
        answer = f"To take alert #{alert.id}, reply 1, ACK or YES (or ACK {alert.id})."
    alerts.record(db, alert, EntryKind.SMS_REPLY, actor, text, notification=n.id)
    alerts.announce(db, Kind.ALERT_ESCALATION, alert)
    reply.message(answer)
    return Response(str(reply), media_type=XML)
