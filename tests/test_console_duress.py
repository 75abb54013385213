"""A duress on an alert someone had taken raises the full alarm again, on a console that never
touched it, in Chromium and Firefox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from monitor.users.models import Role
from tests.browsers import sign_in
from tests.support import Broker, Running
from tests.test_console_urgency import count_plays, has, plays, quick_service, row, until


@pytest.fixture
def svc(tmp_path: Path, mqtt_broker: Broker) -> Iterator[Running]:
    yield from quick_service(tmp_path, mqtt_broker)


def test_a_duress_on_a_taken_alert_raises_the_alarm_again_on_another_console(
    svc: Running, browser: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("alice", Role.OPERATOR)
    svc.user("bob", Role.OPERATOR)
    alice = sign_in(browser, base, "alice")
    bob = sign_in(browser, base, "bob")
    count_plays(bob)
    badge, b = svc.badge("badge-ur1", name="Nia Okoro")
    alert_id = badge.raise_alert(type="red")
    expect(row(bob, alert_id)).to_have_class(has("flash"), timeout=5_000)
    expect(bob).to_have_title("(1) PANIC · Vigil")

    row(alice, alert_id).click()
    alice.click("#ack")
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
    expect(row(bob, alert_id)).to_contain_text("alice", timeout=5_000)
    expect(row(bob, alert_id)).not_to_have_class(has("flash"))
    expect(bob).to_have_title("Vigil console")
    before = plays(bob, "duress")

    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    # On Bob's console, who never touched it: a duress, nobody in charge, flashing and sounding.
    tr = row(bob, alert_id)
    expect(tr).to_contain_text("Duress", timeout=5_000)
    expect(tr).to_have_class(has("k-duress"))
    expect(tr).to_have_class(has("flash"))
    expect(tr.locator("td").nth(5)).to_have_text("")
    expect(bob).to_have_title("(1) DURESS · Vigil")
    until(bob, f"window.plays.duress > {before}", 5)
    # Taking charge of the duress is open to anyone again, and the timeline says why.
    tr.click()
    expect(bob.locator("#ack")).to_be_enabled()
    expect(bob.locator("#timeline")).to_contain_text(
        "Raised again: the duress PIN came after alice"
    )
    bob.click("#ack")
    expect(tr).to_contain_text("bob", timeout=5_000)
    expect(bob).to_have_title("Vigil console")
