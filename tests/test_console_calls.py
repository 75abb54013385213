"""Calls from the console (calls.js, escalation/calls.py), in Chromium against the whole
service, placed through the real twilio library against the fake Twilio, whose calls ring,
are answered and post their signed webhooks back to the served service."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from monitor.users.models import Role
from monitor.users.service import set_phone
from tests.browsers import sign_in, watched_context
from tests.escalation_support import FROM, PUBLIC_URL, WORKER_PHONE, alert_pk, escalating
from tests.fake_twilio import FakeTwilio
from tests.fake_twilio_voice import RECORDING
from tests.support import Broker

ALICE = "+447700900555"
POLICY = """
policies:
  - name: Housing panic
    alert_types: [red]
    steps:
      - {channel: console}
      - {after: 600, channel: sms, to: [backup]}
"""
SHOTS = os.environ.get("VIGIL_SHOTS", "")  # where to leave screenshots to look at


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def test_call_worker_rings_the_operator_then_the_worker_and_shows_the_call_as_it_goes(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, chrome: BrowserContext, chromium: Browser
) -> None:
    with (
        FakeTwilio() as fake,
        escalating(tmp_path, db_url, mqtt_broker, fake, POLICY, call_recording=True) as svc,
        httpx.Client(base_url=(base := svc.serve_http())) as served,
    ):
        fake.voice.reach(PUBLIC_URL, served)
        svc.user("alice", Role.OPERATOR)
        svc.user("bob", Role.OPERATOR)
        with svc.store.begin() as db:
            set_phone(db, "alice", ALICE)
        page = sign_in(chrome, base, "alice")
        badge, _ = svc.badge("badge-call", name="Nia Walker")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        page.locator(f"#queue tbody tr[data-id='{pk}']").click()

        calls = page.locator("#d-calls")
        worker = calls.locator(".call-target").filter(has_text="Nia Walker")
        expect(worker.locator("a.tel")).to_have_attribute("href", f"tel:{WORKER_PHONE}")
        expect(page.locator("#d-facts a.tel")).to_have_text(WORKER_PHONE)
        expect(calls).to_contain_text(f"Your phone ({ALICE}) rings first")
        expect(calls).to_contain_text("Calls are recorded")
        worker.get_by_role("button", name="Call worker").click()

        latest = calls.locator(".call-list li").first
        expect(latest.locator(".call-state")).to_have_text("Ringing your phone")
        first = fake.wait_for_count("call", 1, to=ALICE, answered=True)[-1].sid
        assert first is not None
        fake.voice.answer(first)
        expect(latest.locator(".call-state")).to_have_text("Ringing Nia Walker")
        second = fake.voice.child(first)
        assert fake.resource(second)["to"] == WORKER_PHONE
        assert fake.resource(second)["from"] == FROM
        fake.voice.answer(second)
        expect(latest.locator(".call-state")).to_have_text("Connected")
        expect(latest.locator(".call-time")).to_have_text("1\u00a0s", timeout=3_000)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/calls-connected-1366.png", full_page=True)
        fake.voice.hang_up(second, talked_s=133)
        expect(latest.locator(".call-state")).to_have_text("Ended")

        timeline = page.locator("#timeline")
        who = f"Call from alice to Nia Walker ({WORKER_PHONE}): "
        for text in (
            who + f"ringing alice on {ALICE}",
            who + "alice answered; ringing Nia Walker",
            who + "Nia Walker answered: connected",
            who + "ended after 2 min 13 s",
            who + "recording kept as evidence call-RE",
        ):
            expect(timeline).to_contain_text(text)
        digest = hashlib.sha256(RECORDING).hexdigest()
        expect(timeline).to_contain_text(f"sha256 {digest}")
        expect(latest).to_contain_text("Recording kept as evidence call-RE")
        assert all(200 <= w.status_code < 300 for w in fake.voice.webhooks)

        # An operator with no phone on their user sees why they cannot call, at phone width.
        narrow, blocked = watched_context(chromium, 390, 844)
        try:
            other = sign_in(narrow, base, "bob")
            other.goto(f"{base}/#alert={pk}")
            button = other.locator("#d-calls").get_by_role("button", name="Call worker")
            expect(button).to_be_disabled()
            expect(other.locator("#d-calls .call-off")).to_contain_text(
                "You have no phone number on your user (bob)"
            )
            # The tel: link still lets them dial from the phone in their hand.
            expect(other.locator("#d-calls a.tel").first).to_be_visible()
            box = button.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390
            expect(other.locator("#d-calls .call-list")).to_contain_text("Ended")
            # The recording's long sha256 and evidence id wrap: nothing is off screen.
            assert other.evaluate("document.documentElement.scrollWidth") <= 390
            if SHOTS:
                other.screenshot(path=f"{SHOTS}/calls-nophone-390.png", full_page=True)
        finally:
            narrow.close()
        assert blocked == []
