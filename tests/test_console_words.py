"""Human words, live times, /docs offline and the favicon: the console, the review pages and
the incident PDF show the service's labels, never stored values; relative times move."""

from __future__ import annotations

import io
import json
import re
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Route, expect
from pypdf import PdfReader

from monitor.users.models import Role
from tests.browsers import sign_in
from tests.support import WAIT_S, Running, wait_until

# Stored values that must never reach a person's eyes as they are.
RAW = ("worker_safe", "visit_overdue", "acknowledged", "resolved (", "raised (", "user:")


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    # About what people read; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _overdue_alert(svc: Running) -> int:
    """A visit that was due a moment ago, left to become a visit_overdue alert."""
    badge, _ = svc.badge("badge-words", name="Ana Silva")
    started = {"v": 1, "ts": int((time.time() - 59) * 1000), "id": "visit-w", "action": "start"}
    badge.publish_raw(
        "visit", json.dumps({**started, "duration_s": 60, "note": "Flat 2, Ash Row"}), qos=1
    )
    badge.wait_for("visit_started", visit_id="visit-w", timeout=10)
    op = svc.login("lead")

    def raised() -> int | None:
        found = svc.http.get("/api/v1/alerts", headers=op).json()
        return next((a["id"] for a in found if a["type"] == "visit_overdue"), None)

    alert_id: int = wait_until(raised, timeout=20, what="the visit_overdue alert")
    return alert_id


def _pdf_text(body: bytes) -> str:
    assert body.startswith(b"%PDF-")
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)


def test_labels_not_raw_values_on_screen_and_in_the_pdf(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    lead = svc.user("lead", Role.SUPERVISOR)
    alert_id = _overdue_alert(svc)
    page = sign_in(chrome, base, "lead")
    expect(page.locator("#who")).to_contain_text("(Supervisor)")

    page.locator(f"#queue tbody tr[data-id='{alert_id}']").click()
    facts = page.locator("#d-facts")
    expect(facts).to_contain_text("Raised, nobody in charge")
    timeline = page.locator("#timeline")
    # The overdue entry says when the visit was due in words, not as an ISO time.
    expect(timeline).to_contain_text(re.compile(r"Visit overdue: due at \d\d:\d\d:\d\d UTC on \d"))
    expect(timeline).not_to_contain_text(re.compile(r"\d{4}-\d\d-\d\dT\d\d:"))
    # The escalation policy's entry counts in agreed words ("1 step", not "1 steps").
    expect(timeline).not_to_contain_text(re.compile(r"\b1 (steps|times)\b"))

    # The relative time in the detail pane moves by itself, nothing else happening.
    ago = facts.locator("time.ago")
    first = ago.inner_text()
    expect(ago).not_to_have_text(first, timeout=4_000)
    assert re.fullmatch(r"\d+\u00a0s ago|\d+\u00a0min \d+\u00a0s ago", ago.inner_text())

    page.click("#ack")
    expect(facts).to_contain_text("Taken charge of")
    r = svc.http.post(
        f"/api/v1/alerts/{alert_id}/resolve", headers=lead, json={"outcome": "worker_safe"}
    )
    assert r.status_code == 200, r.text

    # The review page: its facts, its list and the kinds of its timeline entries in words.
    page.click("#tab-review")
    page.locator(f"#incidents tbody tr[data-id='{alert_id}']").click()
    incident = page.locator("#rv-incident")
    expect(page.locator("#rv-facts")).to_contain_text("Worker safe")
    expect(page.locator("#rv-facts")).to_contain_text("Resolved")
    kinds = page.locator("#rv-timeline .kind")
    expect(kinds.first).to_have_text("Alert raised")
    expect(page.locator("#rv-timeline li[data-kind=resolved] .kind")).to_have_text("Resolved")
    expect(page.locator("#rv-timeline")).to_contain_text("Resolved: Worker safe (lead)")
    expect(page.locator("#rv-timeline")).to_contain_text("(Vigil)")
    shown = incident.inner_text()
    for raw in RAW:
        assert raw not in shown, raw
    page.click("#rv-back")
    expect(page.locator("#incidents tbody tr").first).to_contain_text("Worker safe")
    expect(page.locator("#incidents tbody tr").first).to_contain_text("Visit overdue")

    # The PDF, from the same table.
    r = svc.http.get(f"/api/v1/incidents/{alert_id}/report.pdf", headers=lead)
    assert r.status_code == 200, r.text
    text = _pdf_text(r.content)
    for label in ("Type Visit overdue", "State Resolved", "Outcome Worker safe", "Alert raised"):
        assert label in text, label
    assert re.search(r"Resolved: Worker safe", text)
    assert re.search(r"Taken charge   lead|Taken charge\s+lead", text)
    for raw in RAW:
        assert raw not in text, raw


def test_docs_work_offline_and_show_the_api(svc: Running, chrome: BrowserContext) -> None:
    """/docs is served from the service: no request leaves it, and the operations show."""
    base = svc.serve_http()
    ours = urlsplit(base).netloc
    hosts: list[str] = []

    def record(route: Route) -> None:
        host = urlsplit(route.request.url).netloc
        hosts.append(host)
        if host == ours:
            route.continue_()
        else:
            route.abort()  # as without the internet

    chrome.route("**/*", record)
    page = chrome.new_page()
    page.goto(base + "/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=2 * WAIT_S * 1000)
    expect(page.locator("#swagger-ui")).to_contain_text("/api/v1/alerts/{alert_id}/acknowledge")
    assert page.locator(".opblock").count() > 20
    assert set(hosts) == {ours}, hosts
    # Its icon is Vigil's, and the page keeps the service's content policy.
    assert page.locator("link[rel=icon]").first.get_attribute("href") == "/favicon.svg"
    r = svc.http.get("/docs")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text  # nothing inline
    assert svc.http.get("/redoc").status_code == 404  # it would need a CDN: not offered


def test_the_favicon_is_served_and_linked(svc: Running) -> None:
    svg = svc.http.get("/favicon.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["cache-control"] == "public, max-age=86400"
    assert svg.text.lstrip().startswith("<svg") and "<title>Vigil</title>" in svg.text
    ico = svc.http.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/vnd.microsoft.icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    assert "max-age" in ico.headers["cache-control"]
    for page in ("/", "/docs"):
        assert 'rel="icon" href="/favicon.svg"' in svc.http.get(page).text, page
