"""Twilio's webhooks: a key pressed on a call, an SMS reply, delivery statuses.

Every request must carry a valid X-Twilio-Signature, computed by Twilio over the public URL
it called and the form it posted; anything else is answered 403 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from escalation import flows, voice
from escalation.models import Notification
from escalation.policies import WORKER
from escalation.summary import ACK_DIGIT, REPEAT_DIGIT
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.deps import SessionDep, SettingsDep

ACK_WORDS = frozenset({"1", "ACK", "YES"})
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
    n = db.get(Notification, notification_id, with_for_update=True)
    if n is None:
        raise HTTPException(404, f"no notification {notification_id}")
    return n, alerts.get(db, n.alert_id, for_update=True)


def _wake(request: Request) -> None:
    engine = getattr(request.app.state, "escalation", None)
    if engine is not None:
        engine.wake()


@router.post("/voice/{notification_id}/gather", response_class=Response)
def gather(
    notification_id: int, form: SignedForm, db: SessionDep, settings: SettingsDep
) -> Response:
    """The key a called person pressed (nothing pressed: Twilio does not call this)."""
    n, alert = _notification(db, notification_id)
    digits = form.get("Digits", "")
    to_worker = n.recipient_kind == WORKER
    if digits == ACK_DIGIT:
        taken = flows.acknowledge_by(db, n, alert, via="voice")
        alerts.record(
            db,
            alert,
            "keypress",
            f"{n.recipient} ({n.address})",
            f"{n.recipient} pressed 1 on the call" + ("" if taken else " (alert already taken)"),
            notification=n.id,
            digits=digits,
        )
        alerts.announce(db, "alert.escalation", alert)
        twiml = (
            voice.acknowledged(to_worker, alert.duress)
            if taken
            else voice.already_handled(
                (alert.acknowledged_by or "an operator").replace("user:", "")
            )
        )
        return Response(twiml, media_type=XML)
    alerts.record(
        db,
        alert,
        "keypress",
        f"{n.recipient} ({n.address})",
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
    notification_id: int, form: SignedForm, db: SessionDep, request: Request
) -> Response:
    status = form.get("MessageStatus") or form.get("CallStatus") or ""
    if not status:
        raise HTTPException(422, "neither MessageStatus nor CallStatus was posted")
    n, alert = _notification(db, notification_id)
    if flows.record_status(db, n, alert, status.lower()[:16]):
        _wake(request)
    return Response(status_code=204)


@router.post("/sms", response_class=Response)
def sms_reply(form: SignedForm, db: SessionDep) -> Response:
    """A reply to one of our SMS: 1, ACK or YES takes the latest alert sent to that number."""
    sender, words = form.get("From", ""), form.get("Body", "").strip()
    reply = MessagingResponse()
    n_id = db.scalar(
        select(Notification.id)
        .where(Notification.channel == "sms", Notification.address == sender)
        .order_by(Notification.id.desc())
        .limit(1)
    )
    if n_id is None:
        reply.message("Vigil has sent no alert to this number.")
        return Response(str(reply), media_type=XML)
    n, alert = _notification(db, n_id)
    if words.upper() in ACK_WORDS:
        taken = flows.acknowledge_by(db, n, alert, via="sms")
        text = f"{n.recipient} replied {words!r} to the SMS" + (
            "" if taken else " (alert already taken)"
        )
        answer = (
            f"Thank you: you are handling alert #{alert.id}."
            + ("" if alert.duress else " The worker is told help is coming.")
            if taken
            else f"Alert #{alert.id} is already {alert.state}"
            + (f" by {alert.acknowledged_by.replace('user:', '')}" if alert.acknowledged_by else "")
            + "."
        )
    else:
        text = f"{n.recipient} replied to the SMS: {words[:500]!r} (not an acknowledgement)"
        answer = f"To take alert #{alert.id}, reply 1, ACK or YES."
    alerts.record(db, alert, "sms_reply", f"{n.recipient} ({n.address})", text, notification=n.id)
    alerts.announce(db, "alert.escalation", alert)
    reply.message(answer)
    return Response(str(reply), media_type=XML)
