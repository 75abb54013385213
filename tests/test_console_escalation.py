"""The escalation plan in the console's alert, with its countdown, and "Escalate now", in
Chromium against the whole service (SMS and calls to the outbox)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from monitor.users.models import Role
from tests.browsers import sign_in, watched_context
from tests.escalation_support import BACKUP, alert_pk, escalating
from tests.support import Broker

POLICY = """
policies:
  - name: Housing panic
    alert_types: [red]
    steps:
      - {channel: console}
      - {after: 90, channel: sms, to: [backup]}
      - {after: 120, channel: voice, to: [Duty manager]}
"""
# Where to leave screenshots to look at (VIGIL_SHOTS=dir); none by default.
SHOTS = os.environ.get("VIGIL_SHOTS", "")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def test_the_plan_counts_down_and_escalate_now_runs_the_next_step(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, chrome: BrowserContext, chromium: Browser
) -> None:
    with escalating(tmp_path, db_url, mqtt_broker, None, POLICY) as svc:
        base = svc.serve_http()
        svc.user("op1", Role.OPERATOR)
        page = sign_in(chrome, base, "op1")
        badge, _ = svc.badge("badge-plan", name="Nia Walker")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        page.locator(f"#queue tbody tr[data-id='{pk}']").click()

        plan = page.locator("#d-escalation")
        expect(plan.locator(".plan-status")).to_have_text("Escalating", timeout=5_000)
        expect(plan.locator(".plan-next")).to_contain_text(
            "Next: step 2 of 3 · SMS · Housing backup"
        )
        steps = plan.locator(".plan-step")
        expect(steps).to_have_count(3)
        expect(steps.nth(0)).to_contain_text("Done")
        expect(steps.nth(0)).to_contain_text("Console · operators")
        expect(steps.nth(2)).to_contain_text("Planned")
        expect(steps.nth(2)).to_contain_text("2\u00a0min after the step before")
        # The countdown moves, second by second, from about a minute and a half.
        countdown = plan.locator(".plan-next .countdown")
        first = countdown.text_content() or ""
        assert re.fullmatch(r"1\u00a0min [23]\d\u00a0s", first), first
        expect(countdown).not_to_have_text(first, timeout=3_000)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/plan-1366.png", full_page=True)

        # The button says what it sets off.
        expect(page.locator("#escalate-now")).to_have_text("Escalate now: SMS to Housing backup")
        page.click("#escalate-now")
        # The step ran now, not in a minute and a half, and the timeline says who asked.
        expect(page.locator("#timeline")).to_contain_text(
            "Escalate now: step 2 of 3 (sms to Housing backup) runs at once", timeout=5_000
        )
        expect(page.locator("#timeline")).to_contain_text("op1")
        expect(steps.nth(1)).to_contain_text("Done", timeout=5_000)
        expect(steps.nth(1).locator(".plan-sends")).to_contain_text(
            f"Housing backup ({BACKUP}) outbox, not sent", timeout=5_000
        )
        expect(plan.locator(".plan-next")).to_contain_text(
            "Next: step 3 of 3 · Call · Duty manager"
        )
        assert re.fullmatch(r"[12]\u00a0min \d+\u00a0s", countdown.text_content() or "")

        # Taken: the plan says it stopped and why, and Escalate now is off.
        page.click("#ack")
        expect(plan.locator(".plan-status")).to_have_text("Stopped", timeout=5_000)
        expect(plan.locator(".plan-next")).to_contain_text("the alert was taken by op1")
        expect(page.locator("#escalate-now")).to_be_disabled()
        expect(steps.nth(2)).to_contain_text("Not run")

        if SHOTS:
            context, _ = watched_context(chromium, 390, 844)
            phone = sign_in(context, base, "op1")
            phone.goto(f"{base}/#alert={pk}")
            expect(phone.locator("#d-escalation .plan-status")).to_have_text("Stopped")
            time.sleep(0.5)
            phone.screenshot(path=f"{SHOTS}/plan-390.png", full_page=True)
            context.close()
