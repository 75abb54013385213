"""The console as docs/console.md shows it: a realistic shift in London (a duress, a panic,
one taken by another operator, a test, a worker with two alerts, a visit), the demo's default
procedures and escalation policy, calls through the fake Twilio, checked shot by shot.

VIGIL_SCREENSHOTS=docs/images: the test also writes the docs' console-*.png, as
tests/test_worker_app.py writes the worker app's; without it, it only checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.procedures import definitions as procedures
from monitor.users.models import Role
from monitor.users.service import set_phone
from tests.browsers import SHOTS, shoot, sign_in
from tests.escalation_support import FROM, PUBLIC_URL, load
from tests.fake_twilio import FakeTwilio
from tests.support import PASSWORD, Broker, Running, running, service_settings

ROOT = Path(__file__).parents[1]
DEFAULT_PROCEDURES = ROOT / "monitor" / "procedures" / "default_procedures.yaml"
DEFAULT_POLICY = ROOT / "escalation" / "default_policy.yaml"
ANA_PHONE = "+447700900555"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def svc(tmp_path: Path, mqtt_broker: Broker) -> Iterator[Running]:
    """The service with the demo's procedures and policy, its SMS and calls to a fake Twilio
    (so that the console offers calls, as it does where Twilio is set up)."""
    with FakeTwilio() as fake:
        settings = service_settings(
            tmp_path / "data",
            f"sqlite:///{tmp_path / 'vigil.db'}",
            mqtt_broker,
            public_url=PUBLIC_URL,
            twilio_account_sid=fake.account_sid,
            twilio_auth_token=fake.auth_token,
            twilio_from_number=FROM,
            twilio_api_base=fake.url,
        )
        with running(settings, mqtt_broker) as r:
            with r.store.begin() as db:
                procedures.replace_all(db, procedures.parse_file(DEFAULT_PROCEDURES.read_text()))
            load(r, DEFAULT_POLICY.read_text())
            yield r


def context(engine: Browser, viewport: dict[str, int]) -> tuple[BrowserContext, list[str]]:
    """A fresh profile (twice the pixels when shooting, for sharp images), rows lit steadily
    rather than flashing (a computer set to reduce motion), and the list of what the content
    security policy blocked or a script threw: anything there is a broken console."""
    extra: dict[str, Any] = {"device_scale_factor": 2} if SHOTS and viewport is PHONE else {}
    ctx = engine.new_context(viewport=viewport, reduced_motion="reduce", **extra)  # type: ignore[arg-type]
    problems: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda e: problems.append(f"error: {e}"))
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if "Content-Security-Policy" in m.text or "Content Security Policy" in m.text
                else None
            ),
        )

    ctx.on("page", watch)
    return ctx, problems


def lit(page: Page) -> None:
    """Wait for the start of the rows' lit half-second. With motion reduced the rows' colours
    stay, but a duress row's type is dark red on dark red outside it (console.css sets its
    white only under tbody.blink): a shot between would show it unreadable."""
    body = page.locator("#queue tbody")
    expect(body).not_to_have_class(re.compile(r"\bblink\b"))
    expect(body).to_have_class(re.compile(r"\bblink\b"))


def pk(svc: Running, device_alert_id: str) -> int:
    with svc.store.session() as db:
        found = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
    assert found is not None
    return found


def row(page: Page, alert: int):  # type: ignore[no-untyped-def]
    return page.locator(f'#queue tbody tr[data-id="{alert}"]')


def worker(
    svc: Running, name: str, team: str, at: tuple[float, float], *, moving: bool = False
) -> tuple[Any, str]:
    """A worker's connected badge and duress PIN, with a position in London (and a short trail)."""
    badge, b = svc.badge("badge", name=name, team=team, org="Camden Council")
    lat, lon = at
    for i in range(3 if moving else 1):
        badge.send_location(lat=lat + i * 0.0003, lon=lon - i * 0.0004, acc=8 + i * 4, qos=1)
    return badge, b.duress_pin


def raised(badge: Any, type: str = "red", note: str | None = None) -> str:
    alert = badge.raise_alert(type=type, note=note)
    badge.wait_for("alert_received", alert_id=alert, timeout=10)
    return str(alert)


def test_the_console_as_the_docs_show_it(svc: Running, chromium: Browser) -> None:
    base = svc.serve_http()
    svc.user("ana", Role.OPERATOR)
    ben = svc.user("ben", Role.OPERATOR)
    svc.user("sam", Role.SUPERVISOR)
    with svc.store.begin() as db:
        set_phone(db, "ana", ANA_PHONE)

    # The shift: a visit under way, a worker with two alerts, a test, a panic Ben has, a
    # panic nobody has taken, and a duress.
    ruth, _ = worker(svc, "Ruth Osei", "Community Nursing", (51.5290, -0.1255))
    ruth.start_visit(duration_s=45 * 60, note="Flat 3, 12 Elm St")
    leo, _ = worker(svc, "Leo Grant", "Environmental Health", (51.4975, -0.1357))
    test = pk(svc, raised(leo, "test"))
    mo, _ = worker(svc, "Mo Adeyemi", "Housing", (51.5246, -0.1340))
    mo.heartbeat(batt=12, qos=1)
    mo_first = pk(svc, raised(mo, "no_motion"))
    mo_second = pk(svc, raised(mo, "man_down"))
    priya, _ = worker(svc, "Priya Shah", "School Attendance", (51.5155, -0.0922))
    held = pk(svc, raised(priya))
    assert svc.http.post(f"/api/v1/alerts/{held}/acknowledge", headers=ben).is_success
    nia, _ = worker(svc, "Nia Walker", "Housing", (51.5390, -0.1426), moving=True)
    panic = pk(svc, raised(nia, note="Tenant shouting at the door"))
    tom, tom_duress = worker(svc, "Tom Reyes", "Community Nursing", (51.5033, -0.1195))
    tom_alert = raised(tom)
    tom.cancel_alert(tom_alert, tom_duress)
    tom.wait_for("alert_cancelled", alert_id=tom_alert, timeout=10)
    duress = pk(svc, tom_alert)

    ctx, problems = context(chromium, DESKTOP)
    try:
        page = sign_in(ctx, base, "ana")
        # The queue: what nobody has taken first, most urgent first; the duress on top, the
        # test quiet below what sounds, the panic Ben has last; Mo's two alerts in one row.
        rows = page.locator("#queue tbody tr:visible")
        expect(rows).to_have_count(5)
        expect(rows.first).to_have_attribute("data-id", str(duress))
        expect(rows.first).to_contain_text("Duress")
        expect(rows.last).to_have_attribute("data-id", str(held))
        expect(row(page, held)).to_contain_text("ben")
        expect(row(page, mo_second).locator("td").nth(1)).to_have_attribute("data-more", "+1")
        expect(row(page, mo_first)).to_be_hidden()
        expect(page).to_have_title(re.compile(r"^\(\d\) DURESS · Vigil$"))
        # Rows waiting past the first response target (VIGIL_ACK_TARGETS, 10 s) say so.
        expect(row(page, duress).locator("td.age")).to_contain_text("over 10", timeout=20_000)
        expect(row(page, panic)).to_have_class(re.compile(r"\blate-1\b"))
        expect(row(page, held)).not_to_have_class(re.compile(r"\blate"))
        ids = [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")]
        assert ids.index(mo_second) < ids.index(panic) < ids.index(test), ids
        lit(page)
        shoot(page, "console-queue")

        # One alert: at a glance, the actions, the procedure, the calls, the plan.
        row(page, panic).click()
        expect(page.locator("#d-bar-title")).to_have_text("Panic · Nia Walker")
        summary = page.locator("#d-summary")
        expect(summary).to_contain_text("Raised, nobody in charge")
        expect(summary.locator(".coords")).to_be_visible()
        expect(page.locator("#d-procedure")).to_contain_text("Procedure:")
        page.locator("#d-procedure input[type=checkbox]").first.check()
        expect(page.locator("#d-procedure .sop-step.done")).to_contain_text("Done by ana")
        calls = page.locator("#d-calls")
        expect(calls).to_contain_text(f"Your phone ({ANA_PHONE}) rings first")
        expect(calls.get_by_role("button", name="Call worker")).to_be_enabled()
        plan = page.locator("#d-escalation")
        expect(plan.locator(".plan-status")).to_contain_text("Escalating")
        expect(plan).to_contain_text("Housing backup")
        expect(page.locator("#timeline")).to_contain_text("Step 1 done")
        page.evaluate("window.scrollTo(0, 0)")
        # Down to the plan and the map, whichever ends lower: the timeline is left out.
        bottom = page.evaluate(
            "Math.max(...['#d-escalation', '#map-place'].map("
            "s => document.querySelector(s).getBoundingClientRect().bottom + scrollY))"
        )
        lit(page)
        shoot(
            page,
            "console-alert",
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1366, "height": bottom + 12},
        )

        # Resolving the panic Ben has: the warning, the outcome and note to give, the
        # procedure's steps not ticked.
        row(page, held).click()
        expect(page.locator("#d-bar-title")).to_have_text("Panic · Priya Shah")
        expect(page.locator("#d-procedure")).to_contain_text("Procedure:")
        page.click("#resolve-open")
        dialog = page.locator("#resolve-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#rs-held")).to_contain_text("ben has taken charge")
        expect(page.locator("#outcome")).to_have_value("")
        expect(dialog).to_contain_text("not ticked")
        page.select_option("#outcome", "false_alarm")
        page.fill(
            "#resolve-note", "Priya pressed it by mistake getting into the car; spoke to her."
        )
        shoot(page, "console-resolve")
        page.click("#rs-cancel")
        expect(dialog).to_be_hidden()

        # The connection lost: the banner, the queue greyed, the actions off.
        row(page, panic).click()
        expect(page.locator("#ack")).to_be_enabled()
        port = urlparse(base).port
        svc.stop_http()
        expect(page.locator("#conn-banner")).to_contain_text("Connection to the service lost at")
        expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))
        expect(page.locator("#ack")).to_be_disabled()
        expect(page.locator("#conn")).to_have_text("offline")
        page.evaluate("window.scrollTo(0, 0)")
        lit(page)
        shoot(page, "console-offline")
        svc.serve_http(port=port)
        expect(page.locator("#conn-banner")).to_contain_text("Reconnected at", timeout=15_000)
        page.close()

        # The map of everyone (a supervisor), and the fleet.
        page = sign_in(ctx, base, "sam")
        page.click("#tab-map")
        expect(page.locator("#fm-map path.fm-marker")).to_have_count(6)
        expect(page.locator(f'#fm-map path[data-alert="{duress}"]')).to_have_class(
            re.compile(r"\bfm-duress\b")
        )
        expect(page.locator('#fm-map path[data-worker="Ruth Osei"]')).to_have_attribute(
            "data-status", "visit"
        )
        expect(page.locator("#fm-list")).to_contain_text("Flat 3, 12 Elm St")
        expect(page.locator("#fm-notes")).to_contain_text("Map tiles are not configured")
        page.click("#fm-fit")
        page.wait_for_timeout(600)  # the fit's animation
        shoot(page, "console-map", full_page=True)
        page.click("#tab-fleet")
        expect(page.locator("#devices tbody tr")).to_have_count(6)
        expect(page.locator("#devices")).to_contain_text("Ruth Osei")
        expect(page.locator("#devices")).to_contain_text("12%")
        shoot(page, "console-fleet")
        assert problems == [], problems
    finally:
        ctx.close()

    # A duty manager on a phone, from the link in an SMS: the alert, after signing in.
    ctx, problems = context(chromium, PHONE)
    try:
        page = ctx.new_page()
        page.goto(f"{base}/#alert={panic}")
        page.fill("input[name=username]", "sam")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#d-bar-title")).to_have_text("Panic · Nia Walker")
        expect(page.locator("#back-to-queue")).to_be_visible()
        expect(page.locator("#queue-pane")).to_be_hidden()
        expect(page.locator("#ack")).to_be_in_viewport()
        expect(page.locator("#resolve-open")).to_be_in_viewport()
        scroll, width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= width, f"the alert is {scroll} px wide on a {width} px phone"
        shoot(page, "console-phone")
        assert problems == [], problems
    finally:
        ctx.close()
