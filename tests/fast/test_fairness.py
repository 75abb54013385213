"""Wrong PINs are checked a few times at most and stay in the timeline, and messages waiting
for alerts never sent are held up to a limit (the broker's part of fairness is in
tests/test_fairness.py)."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from monitor.alerts.models import Alert, AlertEvent
from monitor.ingest.models import WaitingMessage
from monitor.ingest.pins import WRONG_PIN_LIMIT
from tests.fast.handlers import Handlers as Running
from tests.support import commits_fail, urgent_store_errors, wait_until
from tests.test_fairness import refused_rows


def test_wrong_pins_are_limited_and_stay_in_the_timeline(svc: Running) -> None:
    badge, b = svc.badge("badge-pins")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    for _ in range(WRONG_PIN_LIMIT + 2):
        badge.cancel_alert(alert_id, "0000")
    # Past the limit, even the right PIN does not cancel: the alert goes on.
    badge.cancel_alert(alert_id, b.cancel_pin)

    def rejections() -> int:
        return sum(1 for c in badge.commands if c.type == "cancel_rejected")

    wait_until(lambda: rejections() == WRONG_PIN_LIMIT + 3, timeout=30, what="every answer")
    with svc.store.session() as db:
        alert = db.scalars(select(Alert).where(Alert.device_alert_id == alert_id)).one()
        assert (alert.state, alert.duress) == ("raised", False)
    # The duress PIN still raises the silent alarm, answered as every other PIN is now.
    badge.cancel_alert(alert_id, b.duress_pin)
    wait_until(lambda: rejections() == WRONG_PIN_LIMIT + 4, timeout=30, what="the duress answer")
    assert not [c for c in badge.commands if c.type == "alert_cancelled"]
    with svc.store.session() as db:
        alert = db.scalars(select(Alert).where(Alert.device_alert_id == alert_id)).one()
        assert (alert.state, alert.duress) == ("raised", True)
        kinds = db.scalars(
            select(AlertEvent.kind).where(
                AlertEvent.alert_id == alert.id, AlertEvent.kind == "cancel_rejected"
            )
        ).all()
        assert len(kinds) == WRONG_PIN_LIMIT
    wait_until(
        lambda: sum(r.repeats for r in refused_rows(svc, b.device_id)) == 4,
        timeout=10,
        what="the cancels past the limit recorded as refused",
    )
    assert all("wrong PINs" in r.reason for r in refused_rows(svc, b.device_id))


def test_a_locked_out_cancel_is_refused_once_and_only_once_it_is_stored(svc: Running) -> None:
    badge, b = svc.badge("badge-locked")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    for _ in range(WRONG_PIN_LIMIT):
        badge.cancel_alert(alert_id, "0000")

    def refusals() -> list[str]:
        return [c.payload["reason"] for c in badge.commands if c.type == "rejected"]

    errors = urgent_store_errors()
    with commits_fail(svc.store):
        # Locked out now: its transaction is tried again and again while commits fail.
        sent = threading.Thread(target=badge.cancel_alert, args=(alert_id, b.cancel_pin))
        sent.start()
        wait_until(lambda: urgent_store_errors() >= errors + 3, what="three tries")
        assert refusals() == []  # nothing told before the cancel is stored
    sent.join()
    answers = [c for c in badge.commands if c.type == "cancel_rejected"]
    assert len(answers) == WRONG_PIN_LIMIT + 1
    assert len(refusals()) == 1 and "wrong PINs" in refusals()[0]
    wait_until(lambda: refused_rows(svc, b.device_id), what="the refusal recorded")
    assert [r.repeats for r in refused_rows(svc, b.device_id)] == [1]  # not once a try


def test_cancels_for_alerts_never_sent_wait_up_to_a_limit(svc: Running) -> None:
    # Kept for longer than the tests' 5 s: on a loaded machine the first would be refused as
    # never come (unknown alert) before the last is sent.
    svc.restart(waiting_max_s=600.0)
    badge, b = svc.badge("badge-held")
    most = svc.settings.waiting_per_device
    for _ in range(most + 5):
        badge.cancel_alert(uuid.uuid4().hex, b.cancel_pin)

    def held() -> int:
        with svc.store.session() as db:
            n = db.scalar(
                select(func.count())
                .select_from(WaitingMessage)
                .where(WaitingMessage.device_id == b.device_id)
            )
        return n or 0

    wait_until(
        lambda: sum(r.repeats for r in refused_rows(svc, b.device_id)) == 5,
        timeout=30,
        what="the cancels past the limit refused",
    )
    assert held() == most
    reasons = [r.reason for r in refused_rows(svc, b.device_id)]
    assert all("already wait" in r for r in reasons), reasons
