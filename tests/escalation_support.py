"""Helpers for escalation tests: a service wired to the fake Twilio, policies, signed webhooks."""

from __future__ import annotations

import contextlib
import html
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from httpx import Response
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from escalation import policies
from escalation.models import Notification
from monitor.alerts.models import Alert, AlertEvent
from tests.fake_twilio import FakeTwilio
from tests.support import Broker, Running, SignsIn, running, service_settings, wait_until

PUBLIC_URL = "https://vigil.example.org"
FROM = "+15005550006"
BACKUP = "+15005550101"  # backup staff for Housing (the test badges' team)
DUTY = "+15005550102"
DISPATCH = "+15005550999"
WORKER_PHONE = "+447700900001"  # what tests.support.add_badge gives every worker

CONTACTS = f"""
contacts:
  - name: Housing backup
    phone: "{BACKUP}"
    backup_for: [Housing]
  - name: Duty manager
    phone: "{DUTY}"
  - name: Emergency dispatch
    phone: "{DISPATCH}"
"""


@contextlib.contextmanager
def escalating(
    tmp_path: Path,
    db_url: str,
    brk: Broker,
    fake: FakeTwilio | None,
    policy_yaml: str,
    name: str = "a",
    contacts: str = "",
    **extra: Any,
) -> Iterator[Running]:
    """A started service whose SMS and calls go to `fake` (None: to the outbox)."""
    twilio: dict[str, Any] = {}
    if fake is not None:
        twilio = {
            "twilio_account_sid": fake.account_sid,
            "twilio_auth_token": fake.auth_token,
            "twilio_from_number": FROM,
            "twilio_api_base": fake.url,
        }
    settings = service_settings(
        tmp_path / name, db_url, brk, public_url=PUBLIC_URL, **twilio, **extra
    )
    with running(settings, brk) as svc:
        load(svc, CONTACTS + contacts + policy_yaml)
        yield svc


def load(svc: SignsIn, text: str) -> None:
    """Replace the stored contacts and policies (either tier's service)."""
    parsed = policies.parse_file(text)
    with svc.store.begin() as db:
        policies.replace_all(db, parsed)


def new_sid(prefix: str) -> str:
    """A sid as Twilio makes them: SM... for a message, CA... for a call."""
    return prefix + secrets.token_hex(16)


def gather_path(twiml: str) -> str:
    """The path (with its query) that TwiML asks Twilio to post the key pressed to."""
    found = re.search(r'<Gather [^>]*action="([^"]+)"', twiml)
    assert found is not None, twiml
    return html.unescape(found[1]).removeprefix(PUBLIC_URL)


def signed_post(
    svc: Running, path: str, params: dict[str, str], *, signature: str | None = None
) -> Response:
    """POST a form as Twilio would, signed with the account's auth token (or `signature`).
    An SMS reply gets a new MessageSid unless `params` has one, as each reply Twilio
    forwards has its own."""
    if path == "/twilio/sms" and "MessageSid" not in params:
        params = {**params, "MessageSid": new_sid("SM")}
    token = svc.settings.twilio_auth_token
    if signature is None:
        signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    return svc.http.post(path, data=params, headers={"X-Twilio-Signature": signature})


def alert_pk(svc: Running, device_alert_id: str) -> int:
    def find() -> int | None:
        with svc.store.session() as db:
            return db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))

    wait_until(lambda: find() is not None, timeout=10, what="the alert stored")
    pk = find()
    assert pk is not None
    return pk


def notifications(svc: Running, pk: int) -> list[Notification]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(Notification).where(Notification.alert_id == pk).order_by(Notification.id)
            )
        )


def notification_to(svc: Running, pk: int, address: str) -> Notification:
    def find() -> Notification | None:
        found = [n for n in notifications(svc, pk) if n.address == address]
        return found[-1] if found else None

    wait_until(lambda: find() is not None, timeout=10, what=f"a notification to {address}")
    n = find()
    assert n is not None
    return n


def timeline(svc: Running, pk: int) -> list[AlertEvent]:
    with svc.store.session() as db:
        return list(
            db.scalars(select(AlertEvent).where(AlertEvent.alert_id == pk).order_by(AlertEvent.id))
        )


def alert_state(svc: Running, pk: int) -> Alert:
    with svc.store.session() as db:
        alert = db.get(Alert, pk)
        assert alert is not None
        return alert
