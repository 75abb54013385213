"""TwiML for calls: say the summary, gather one key, and answer what was pressed."""

from __future__ import annotations

import secrets

from twilio.twiml.voice_response import VoiceResponse

from escalation.summary import ACK_DIGIT


def gather_url(public_url: str, notification_id: int) -> str:
    """Where Twilio posts the key pressed. Each one carries a nonce of its own (`g`), which
    Twilio signs with the rest of the URL: every key press is then a request unlike any
    other, and a replayed one is told apart (escalation.inbound)."""
    nonce = secrets.token_hex(8)
    return f"{public_url.rstrip('/')}/twilio/voice/{notification_id}/gather?g={nonce}"


def call(public_url: str, notification_id: int, text: str) -> str:
    """Say `text` and wait for one key; silence ends the call (not acknowledged)."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, timeout=8, action=gather_url(public_url, notification_id), method="POST"
    )
    gather.say(text)
    response.say("No key was pressed. Goodbye.")
    response.hangup()
    return str(response)


def acknowledged(to_worker: bool, duress: bool) -> str:
    response = VoiceResponse()
    if to_worker:
        response.say("Thank you. The monitoring centre has been told you are safe.")
    elif duress:
        # Under duress the worker's device is told nothing; do not promise otherwise.
        response.say("Thank you. You are handling this duress alert. Take care.")
    else:
        response.say(
            "Thank you. You are handling this alert, and the worker is told help is coming."
        )
    response.hangup()
    return str(response)


def already_handled(by: str) -> str:
    response = VoiceResponse()
    response.say(f"This alert is already being handled by {by}. Thank you. Goodbye.")
    response.hangup()
    return str(response)


def not_acknowledged() -> str:
    response = VoiceResponse()
    response.say(
        f"You have not taken this alert. To take it, press {ACK_DIGIT} next time. Goodbye."
    )
    response.hangup()
    return str(response)


def goodbye() -> str:
    response = VoiceResponse()
    response.say("Goodbye.")
    response.hangup()
    return str(response)
