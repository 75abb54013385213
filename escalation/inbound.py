"""Twilio's webhooks: a key pressed on a call, an SMS reply, delivery statuses.

Every request must carry a valid X-Twilio-Signature, computed by Twilio over the public URL
it called and the form it posted; anything else is answered 403 and changes nothing.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from escalation import delivery, voice
from escalation.models import Notification
from escalation.policies import WORKER
from escalation.summary import ACK_DIGIT, REPEAT_DIGIT
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.deps import RowId, SessionDep, SettingsDep

# "1", "ACK" or "YES", optionally naming the alert: "ACK 42" takes alert #42.
ACK_REPLY = re.compile(r"^(?:1|ACK|YES)(?:\s+#?(\d{1,12}))?$", re.IGNORECASE)
XML = "application/xml"


async def signed_form(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The posted form, once its signature checks out against the configured public URL."""
    form = await request.form()
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
    notification_id: RowId, form: SignedForm, db: SessionDep, settings: SettingsDep
) -> Response:
    """The key a called person pressed (nothing pressed: Twilio does not call this)."""
    n, alert = _notification(db, notification_id)
    digits = form.get("Digits", "")[:16]
    actor = f"{n.recipient} ({n.address})"
    if delivery.silenced(db, n, alert):
        alerts.record(
            db,
            alert,
            "keypress",
            actor,
            f"{n.recipient} pressed {digits or 'nothing'} on the call (duress: ignored)",
            notification=n.id,
            digits=digits,
        )
        return Response(voice.goodbye(), media_type=XML)
    if digits == ACK_DIGIT:
        taken = delivery.acknowledge_by(db, n, alert, via="voice")
        alerts.record(
            db,
            alert,
            "keypress",
            actor,
            f"{n.recipient} pressed 1 on the call" + ("" if taken else " (alert already taken)"),
            notification=n.id,
            digits=digits,
        )
        alerts.announce(db, "alert.escalation", alert)
        if taken:
            return Response(
                voice.acknowledged(n.recipient_kind == WORKER, alert.duress), media_type=XML
            )
        return Response(voice.already_handled(_taken_by(alert)), media_type=XML)
    alerts.record(
        db,
        alert,
        "keypress",
        actor,
        f"{n.recipient} pressed {digits or 'nothing'} on the call"
        + (": hearing it again" if digits == REPEAT_DIGIT else ": not acknowledged"),
        notification=n.id,
        digits=digits,
    )
    alerts.announce(db, "alert.escalation", alert)
    if digits == REPEAT_DIGIT:
        return Response(voice.call(settings.public_url, n.id, n.body), media_type=XML)
    return Response(voice.not_acknowledged(), media_type=XML)


@router.post("/status/{notification_id}", status_code=204, response_class=Response)
def delivery_status(
    notification_id: RowId, form: SignedForm, db: SessionDep, request: Request
) -> Response:
    status = form.get("MessageStatus") or form.get("CallStatus") or ""
    if not status:
        raise HTTPException(422, "neither MessageStatus nor CallStatus was posted")
    sid = form.get("MessageSid") or form.get("CallSid") or None
    n, alert = _notification(db, notification_id)
    if delivery.record_status(db, n, alert, status.lower()[:16], sid and sid[:64]):
        _wake(request)
    return Response(status_code=204)


@router.post("/sms", response_class=Response)
def sms_reply(form: SignedForm, db: SessionDep) -> Response:
    """A reply to our SMS: 1, ACK or YES takes the latest alert sent to that number that
    still waits for someone ("ACK 42" names one)."""
    sender, words = form.get("From", "")[:32], form.get("Body", "").strip()
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
        alerts.record(db, alert, "sms_reply", actor, f"{n.recipient} replied (duress: ignored)")
        return Response(str(MessagingResponse()), media_type=XML)  # no answer at all
    if match:
        taken = delivery.acknowledge_by(db, n, alert, via="sms")
        text = f"{n.recipient} replied {words!r} to the SMS" + (
            "" if taken else " (alert already taken)"
        )
        if taken:
            answer = f"Thank you: you are handling alert #{alert.id}." + (
                "" if alert.duress else " The worker is told help is coming."
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
    alerts.record(db, alert, "sms_reply", actor, text, notification=n.id)
    alerts.announce(db, "alert.escalation", alert)
    reply.message(answer)
    return Response(str(reply), media_type=XML)
