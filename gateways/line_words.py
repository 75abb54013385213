"""What a worker reads and hears from the Vigil number: the SMS answers and the call's TwiML.

A cancel is answered by the command monitor chose for the device (`alert_cancelled` or
`cancel_rejected`), never by anything else: the duress PIN is given `alert_cancelled` exactly
as the cancel PIN is, so its SMS answer is the same text, character for character.
"""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

RECEIVED = (
    "Vigil has your alert: help is being arranged. If it was a mistake, text CANCEL and your PIN."
)
# By the command the device would get (PROTOCOL.md); duress is alert_cancelled.
CANCEL_ANSWERS = {
    "alert_cancelled": "Vigil: your alert is cancelled.",
    "cancel_rejected": "Vigil: wrong PIN. Your alert goes on.",
}
HOW_TO_CANCEL = "Vigil: to cancel your alert, text CANCEL and your PIN."
NO_ALERT = "Vigil: there is no alert from this phone to cancel."
REFUSED = "Vigil cannot take alerts from this phone. If you need help, call the emergency services."
GREETING = "Vigil. Your alert is raised. This call is recorded."

# Parts of one call recorded one after the other: a key pressed in a pocket ends a
# recording (Twilio's finishOnKey), and the line goes on listening in a new one.
MAX_PARTS = 4


def sms(text: str) -> str:
    reply = MessagingResponse()
    reply.message(text)
    return str(reply)


def cancel_answer(command: str | None) -> str:
    """The SMS answer to CANCEL <PIN>, from the command monitor queued for the device (None:
    the cancel was refused, e.g. the worker's line is disabled)."""
    if command is None:
        return REFUSED
    return CANCEL_ANSWERS[command]


def refused_call() -> str:
    response = VoiceResponse()
    response.say(REFUSED)
    response.hangup()
    return str(response)


def record(base_url: str, max_s: int, part: int) -> str:
    """Record the call: the recording's status goes to /twilio/line/recording, and when
    one recording ends (a key, the time limit) the next part begins, up to MAX_PARTS."""
    response = VoiceResponse()
    if part == 1:
        response.say(GREETING)
    response.record(
        action=f"{base_url}/twilio/line/recorded?part={part}",
        method="POST",
        max_length=max_s,
        timeout=0,  # silence does not end it: the worker may not be able to speak
        play_beep=False,  # nothing the person with the worker would notice
        trim="do-not-trim",
        recording_status_callback=f"{base_url}/twilio/line/recording",
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    return str(response)


def after_recording(base_url: str, max_s: int, part: int) -> str:
    """Twilio asks what next when a recording ends: another part while the caller is on
    the line, up to MAX_PARTS, then hang up."""
    if part >= MAX_PARTS:
        response = VoiceResponse()
        response.hangup()
        return str(response)
    return record(base_url, max_s, part + 1)
