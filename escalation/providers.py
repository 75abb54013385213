"""The providers notifications leave by: Twilio for SMS and calls, or the outbox without it,
an HTTP client for signed webhooks, and SIA DC-09 to alarm-receiving centres. The channels
(escalation.channels) choose which.

Each send answers with a `Sent` or raises `Retry` (worth trying again: a 5xx, a timeout) or
`Failed` (no point: a bad number, a 4xx). Without Twilio credentials SMS and calls go to the
outbox: recorded and shown in the console, not sent.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from escalation import arc, voice
from escalation.states import NotificationStatus
from monitor.config import Settings

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class Outgoing:
    """A notification as the sending thread needs it (a copy: no database session)."""

    id: int
    alert_id: int
    channel: str
    address: str
    body: str
    attempt: int  # the claim it was sent under: a result is applied only to that claim
    # When (time.monotonic()) the transaction that claimed it found it fit to send: one not
    # aimed at the worker's phone, which duress cannot stop. None: look again before sending.
    checked_at: float | None = None


@dataclass(frozen=True)
class Sent:
    status: str  # the provider's word (NotificationStatus): queued, delivered, outbox...
    sid: str | None = None


class Retry(Exception):
    """The send failed in a way that may pass: try again later."""


class Failed(Exception):
    """The send cannot succeed (a refused number, a 4xx from a webhook)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: HMAC-SHA256 over "<timestamp>." followed by the body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _status_of(exc: TwilioException) -> int | None:
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        return int(exc.status)
    return None


@contextmanager
def _twilio_errors() -> Iterator[None]:
    """Twilio's refusals as Failed, and what may pass (5xx, 408, 429, no answer) as Retry."""
    try:
        yield
    except TwilioException as exc:
        status = _status_of(exc)
        if status is not None and status < 500 and status not in (408, 429):
            raise Failed(f"Twilio refused it ({status}): {exc}") from exc
        raise Retry(f"Twilio error ({status or 'no status'}): {exc}") from exc
    except OSError as exc:  # requests' timeouts and connection errors are OSErrors
        raise Retry(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc


class Providers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()  # a twilio Client (and its HTTP session) per thread
        self.http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    @property
    def twilio_configured(self) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_from_number)

    def _twilio(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            s = self.settings
            client = Client(
                s.twilio_account_sid,
                s.twilio_auth_token,
                http_client=TwilioHttpClient(timeout=s.twilio_timeout_s),
            )
            client.api.base_url = s.twilio_api_base
            self._local.client = client
        return client

    def warm(self) -> None:
        """Make this thread's twilio Client now, not on its first, urgent, send."""
        if self.twilio_configured:
            self._twilio()

    def close(self) -> None:
        self.http.close()

    def _callback(self, n: Outgoing) -> str:
        return f"{self.settings.public_url.rstrip('/')}/twilio/status/{n.id}"

    def sms(self, n: Outgoing) -> Sent:
        """An SMS of `n.body` through Twilio, or to the outbox without it."""
        if not self.twilio_configured:
            return Sent(NotificationStatus.OUTBOX.value)
        with _twilio_errors():
            message = self._twilio().messages.create(
                to=n.address,
                from_=self.settings.twilio_from_number,
                body=n.body,
                status_callback=self._callback(n),
            )
        return Sent(message.status or NotificationStatus.QUEUED.value, message.sid)

    def call(self, n: Outgoing) -> Sent:
        """A call through Twilio that speaks `n.body` and gathers a key, or to the outbox."""
        if not self.twilio_configured:
            return Sent(NotificationStatus.OUTBOX.value)
        with _twilio_errors():
            call = self._twilio().calls.create(
                to=n.address,
                from_=self.settings.twilio_from_number,
                twiml=voice.call(self.settings.public_url.rstrip("/"), n.id, n.body),
                status_callback=self._callback(n),
                status_callback_event=CALL_EVENTS,
                timeout=30,
            )
        return Sent(call.status or NotificationStatus.QUEUED.value, call.sid)

    def bridge_call(self, to: str, url: str, status_callback: str) -> str:
        """A call to `to` (an operator's own phone, escalation.calls) whose TwiML Twilio
        fetches from `url` once it is answered; its sid. Raises Failed or Retry."""
        with _twilio_errors():
            call = self._twilio().calls.create(
                to=to,
                from_=self.settings.twilio_from_number,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_event=CALL_EVENTS,
                timeout=30,
            )
        return str(call.sid)

    def end_call(self, sid: str, twiml: str | None = None) -> None:
        """End a call placed with `bridge_call`: with `twiml`, the call runs it at once (a
        <Dial> under way ends, and the phone it rang stops); without, it is hung up, ringing
        or answered (status "completed"). Raises Failed (Twilio refused: the call may have
        ended already) or Retry."""
        with _twilio_errors():
            if twiml is None:
                self._twilio().calls(sid).update(status="completed")
            else:
                self._twilio().calls(sid).update(twiml=twiml)

    def webhook(self, n: Outgoing) -> Sent:
        """`n.body` POSTed to `n.address`, signed with the webhook secret."""
        body = n.body.encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self.settings.webhook_secret, stamp, body),
            "User-Agent": "Vigil-escalation/1",
        }
        try:
            response = self.http.post(n.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Retry(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return Sent(NotificationStatus.DELIVERED.value)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise Retry(f"webhook answered {response.status_code}")
        raise Failed(f"webhook refused it ({response.status_code})")

    def arc(self, n: Outgoing) -> Sent:
        """`n.body`, an event, to an alarm-receiving centre in SIA DC-09 over TCP or UDP
        (escalation.arc), bounded by the address's timeout. The answer is in the sid."""
        try:
            taken = arc.send(n.address, arc.sequence(n.id), n.body)
        except arc.Unreachable as exc:
            raise Retry(f"ARC: {exc}") from exc
        except arc.Refused as exc:
            raise Failed(f"ARC: {exc}") from exc
        return Sent(NotificationStatus.DELIVERED.value, taken)
