"""TwiML for calls operators place from an alert: what the operator hears when they answer,
the <Dial> that bridges them to the other person, and the words after it."""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, VoiceResponse

# The other person's phone rings this long before the operator is told nobody answered.
DIAL_TIMEOUT_S = 30
OTHER_LEG_EVENTS = "initiated ringing answered completed"


def urls(public_url: str, call_id: int) -> dict[str, str]:
    """Where Twilio asks for the call's TwiML and posts its news (escalation.call_views)."""
    base = f"{public_url.rstrip('/')}/twilio/calls/{call_id}"
    return {
        "answer": f"{base}/answer",
        "operator_status": f"{base}/status?leg=operator",
        "other_status": f"{base}/status?leg=other",
        "dialled": f"{base}/dialled",
        "recording": f"{base}/recording",
    }


def connect(
    public_url: str,
    call_id: int,
    *,
    alert_id: int,
    who: str,
    number: str,
    caller_id: str,
    record: bool,
) -> str:
    """Tell the operator who is being rung, then dial them: both sides bridged on answer,
    and, where calls are recorded, the conversation recorded from then on."""
    to = urls(public_url, call_id)
    response = VoiceResponse()
    said = f"Vigil, alert {alert_id}. Connecting you to {who}."
    if record:
        said += " This call is recorded."
    response.say(said)
    options: dict[str, str | int] = {
        "action": to["dialled"],
        "method": "POST",
        "timeout": DIAL_TIMEOUT_S,
        "caller_id": caller_id,
    }
    if record:
        options |= {
            "record": "record-from-answer-dual",
            "recording_status_callback": to["recording"],
            "recording_status_callback_event": "completed",
        }
    dial = Dial(**options)
    dial.number(
        number,
        status_callback=to["other_status"],
        status_callback_event=OTHER_LEG_EVENTS,
        status_callback_method="POST",
    )
    response.append(dial)
    return str(response)


def say_and_hang_up(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)
