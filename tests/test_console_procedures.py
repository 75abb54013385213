"""The alert's procedure in a real browser (Chromium): the checklist shown in the detail,
a tick in the timeline on every console and in `vigil audit verify`, and resolving with a
step unticked asking why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from typer.testing import CliRunner

from monitor.cli import app
from monitor.procedures.definitions import parse_file, replace_all
from monitor.users.models import Role
from tests.browsers import sign_in, watched_context
from tests.support import Running

# Set to a folder to keep screenshots of the checklist at each width, to look at them.
SHOTS = os.environ.get("VIGIL_SHOTS")

PROCEDURES = """
procedures:
  - name: Panic
    alert_types: [red]
    steps:
      - do: Call the worker's phone
        detail: Ask "Are you safe? Answer yes or no."
      - do: Call the police (999) if there is no answer
"""


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _raise(svc: Running, prefix: str) -> int:
    badge, _ = svc.badge(prefix, name="Ada Stone")
    badge.send_location(lat=51.5, lon=-0.12, acc=8, qos=1)
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    op = svc.login("op1")
    (row,) = [
        a
        for a in svc.http.get("/api/v1/alerts", headers=op).json()
        if a["device_id"] == badge.device_id
    ]
    return int(row["id"])


def _open(page: Page, pk: int) -> None:
    page.locator(f'#queue tbody tr[data-id="{pk}"]').click()


def test_checklist_ticked_in_the_timeline_and_resolved_with_a_reason(
    svc: Running, chrome: BrowserContext
) -> None:
    with svc.store.begin() as db:
        replace_all(db, parse_file(PROCEDURES))
    base = svc.serve_http()
    op = svc.user("op1")
    svc.user("bob", Role.SUPERVISOR)
    pk = _raise(svc, "sop-ui")
    page = sign_in(chrome, base, "op1")
    bob = sign_in(chrome, base, "bob")
    _open(page, pk)
    _open(bob, pk)

    checklist = page.locator("#d-procedure")
    expect(checklist).to_contain_text("Procedure: Panic")
    expect(checklist).to_contain_text("0 of 2 done")
    expect(checklist).to_contain_text('Ask "Are you safe? Answer yes or no."')
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "procedure-1366.png"), full_page=True)

    page.locator("#d-procedure input[data-step='0']").check()
    expect(checklist).to_contain_text("1 of 2 done")
    expect(checklist).to_contain_text("Done by op1 at")
    expect(page.locator("#timeline")).to_contain_text("Step 1 done: Call the worker's phone (op1)")
    # Another console watching the alert sees the tick as it happens.
    expect(bob.locator("#d-procedure input[data-step='0']")).to_be_checked()
    expect(bob.locator("#timeline")).to_contain_text("Step 1 done: Call the worker's phone")

    page.click("#resolve-open")
    unticked = page.locator("#rs-extra")
    expect(unticked).to_contain_text("1 step of the procedure is not ticked")
    expect(unticked).to_contain_text("Call the police (999) if there is no answer")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "procedure-resolve-1366.png"))
    page.select_option("#outcome", "worker_safe")
    page.fill("#resolve-note", "Worker answered: safe, no police needed")
    page.click("#rs-next")
    expect(page.locator("#rs-summary")).to_contain_text(
        "Steps not ticked" + "Call the police (999) if there is no answer"
    )
    page.click("#rs-confirm")
    expect(page.locator("#resolve-dialog")).to_be_hidden()
    expect(page.locator(f'#queue tbody tr[data-id="{pk}"]')).to_have_count(0)

    timeline = svc.http.get(f"/api/v1/alerts/{pk}", headers=op).json()["timeline"]
    reasons = [t["text"] for t in timeline if t["kind"] == "procedure_unfinished"]
    assert reasons == [
        "Resolved with 1 step not ticked (Call the police (999) if there is no answer)."
        " Why: Worker answered: safe, no police needed"
    ]
    # The safety lead's review of the incident shows the checklist as it was left.
    bob.click("#tab-review")
    bob.locator("#incidents tbody tr").first.click()
    recorded = bob.locator("#rv-procedure")
    expect(recorded).to_contain_text("Procedure: Panic")
    expect(recorded).to_contain_text("1 of 2 done")
    expect(recorded.locator("input:checked")).to_have_count(1)
    expect(recorded.locator("input:enabled")).to_have_count(0)
    expect(bob.locator("#rv-timeline")).to_contain_text("Why: Worker answered")

    # The checklist, the tick and the reason are in the chain `vigil audit verify` checks.
    env = {"VIGIL_DATABASE_URL": svc.settings.database_url}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output


def test_checklist_fits_a_phone(svc: Running, chromium) -> None:  # type: ignore[no-untyped-def]
    with svc.store.begin() as db:
        replace_all(db, parse_file(PROCEDURES))
    base = svc.serve_http()
    svc.user("op1")
    pk = _raise(svc, "sop-390")
    context, blocked = watched_context(chromium, 390, 844)
    try:
        page = sign_in(context, base, "op1")
        _open(page, pk)
        box = page.locator("#d-procedure input[data-step='1']")
        expect(box).to_be_visible()
        box.check()
        expect(page.locator("#d-procedure")).to_contain_text("1 of 2 done")
        # Nothing of the checklist is wider than the screen.
        width = page.locator("#d-procedure").evaluate("e => e.getBoundingClientRect().right")
        assert width <= 390
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / "procedure-390.png"), full_page=True)
        assert blocked == []
    finally:
        context.close()
