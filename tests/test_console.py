"""The console in real browsers: Debian's Chromium and Firefox ESR, driven by Playwright."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import (
    BrowserContext,
    expect,
)

from monitor.alerts.states import ACTIVE_STATES, AlertType, Outcome
from monitor.devices import service as devices
from monitor.users.models import Role
from tests import owntracks_messages as ot
from tests.browsers import resolve_in_console, sign_in
from tests.escalation_support import alert_pk, escalating
from tests.support import PASSWORD, Broker, Running, running, service_settings, wait_until


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    # The browser tests are about the console; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def test_alert_appears_and_taking_charge_shows_everywhere(
    svc: Running, browser: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("alice", Role.OPERATOR)
    svc.user("bob", Role.OPERATOR)
    alice = sign_in(browser, base, "alice")
    bob = sign_in(browser, base, "bob")

    badge, _ = svc.badge("badge-ui", name="Nia <b>Okoro</b>")
    # (How fast it appears is measured by bench/console_latency.py, not asserted here.)
    alert_id = badge.raise_alert(type="red", note="<img src=x onerror=alert(1)>")
    row = alice.locator("#queue tbody tr").first
    expect(row).to_contain_text("Panic", timeout=5_000)
    # What people typed is shown as text, never as HTML.
    expect(row).to_contain_text("Nia <b>Okoro</b>")
    expect(bob.locator("#queue tbody tr").first).to_contain_text("Panic")

    row.click()
    expect(alice.locator("#d-facts")).to_contain_text("<img src=x onerror=alert(1)>")
    alice.click("#ack")
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
    expect(bob.locator("#queue tbody tr").first).to_contain_text("alice", timeout=5_000)

    alice.fill("#note", "Called the worker, police on the way")
    alice.click("#note-form button")
    expect(alice.locator("#timeline")).to_contain_text("police on the way")
    resolve_in_console(alice, "genuine_emergency", "Police attended, worker unhurt")
    expect(alice.locator("#empty")).to_be_visible(timeout=5_000)
    expect(bob.locator("#empty")).to_be_visible(timeout=5_000)
    badge.wait_for("alert_closed", alert_id=alert_id, timeout=10)


def test_duress_shows_as_duress(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("carol", Role.OPERATOR)
    page = sign_in(browser, base, "carol")
    badge, b = svc.badge("badge-ui2")
    alert_id = badge.raise_alert(type="red")
    expect(page.locator("#queue tbody tr").first).to_contain_text("Panic", timeout=5_000)
    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    expect(page.locator("#queue tbody tr").first).to_contain_text("Duress", timeout=5_000)


def test_dropped_websocket_reconnects_and_catches_up(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("dan", Role.OPERATOR)
    page = sign_in(browser, base, "dan")
    badge, _ = svc.badge("badge-ui3")
    first = badge.raise_alert(type="test")
    expect(page.locator("#queue tbody tr")).to_have_count(1, timeout=5_000)
    badge.wait_for("alert_received", alert_id=first, timeout=10)
    # Drop the socket and keep it down (the console's own reconnect is held back) while an
    # alert is raised, so that only the catch-up can bring it.
    page.evaluate("window.__connect = connect; connect = () => {}; state.ws.close()")
    expect(page.locator("#conn")).to_have_text("offline")
    missed = badge.raise_alert(type="man_down")
    badge.wait_for("alert_received", alert_id=missed, timeout=10)
    page.wait_for_timeout(500)
    expect(page.locator("#queue tbody tr")).to_have_count(1)
    page.evaluate("connect = window.__connect; connect()")
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator(f'#queue tbody tr[data-device-alert="{missed}"]')).to_contain_text(
        "Man down", timeout=5_000
    )
    # It came from the hub's ring buffer after the console's last sequence number: the only
    # snapshot the console ever had is the one it got when it first connected.
    assert page.evaluate("state.snapshots") == 1


def test_detail_pane_map_evidence_and_authorities(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("erin", Role.OPERATOR)
    page = sign_in(browser, base, "erin")
    badge, b = svc.badge("badge-ui4", name="Sam Lee")
    for i in range(3):  # a short trail before the alert
        badge.send_location(lat=51.5 + i * 0.0005, lon=-0.12, acc=8, qos=1)
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    audio = (Path(__file__).parent / "data" / "clip.wav").read_bytes()
    badge.send_evidence("clip-1", alert_id=alert_id, data=audio, codec="wav", duration_ms=1000)
    wait_until(
        lambda: (
            svc.http.put(
                f"/api/v1/devices/{b.device_id}/evidence/clip-1",
                content=audio,
                auth=(b.device_id, b.secret),
            ).status_code
            == 200
        ),
        timeout=10,
        what="the upload",
    )

    page.locator("#queue tbody tr").first.click()
    facts = page.locator("#d-facts")
    expect(facts).to_contain_text("+447700900001")
    expect(facts).to_contain_text("Asthma")
    expect(page.locator("#map")).to_have_attribute("data-points", re.compile(r"[2-9]|\d\d"))
    expect(page.locator("#map .leaflet-interactive").first).to_be_attached()
    player = page.locator("#d-evidence audio")
    # The clip is listed once its upload is seen (a loaded machine may take a while), and
    # fetched only when asked for: each access is logged.
    expect(player).to_have_count(1, timeout=20_000)
    expect(player).not_to_have_attribute("src", re.compile("."))
    page.click("#d-evidence button")
    expect(player).to_have_attribute("src", re.compile("^blob:"))
    duration = page.evaluate(
        "() => new Promise(r => { const a = document.querySelector('#d-evidence audio');"
        " if (a.readyState > 0) r(a.duration); else a.onloadedmetadata = () => r(a.duration); })"
    )
    assert 0.9 < duration < 1.1

    page.fill("#auth-service", "Police (999)")
    page.fill("#auth-ref", "CAD 4471")
    page.click("#authorities-form button")
    expect(page.locator("#timeline")).to_contain_text(
        "Authorities called: Police (999), reference CAD 4471"
    )
    expect(page.locator("#timeline li", has_text="played or downloaded")).to_have_count(1)


def test_the_visit_shows_its_timeline_with_places(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("vic", Role.OPERATOR)
    page = sign_in(browser, base, "vic")
    badge, b = svc.badge("badge-ui-visit")
    with svc.store.begin() as db:
        phone, secret = devices.add_device(
            db, f"ot-{b.device_id}", worker_id=b.worker_id, kind=devices.OWNTRACKS
        )
        phone_id = phone.id
    visit_id = badge.start_visit(note="Home visit, 12 Elm St")
    badge.wait_for("visit_started", visit_id=visit_id, timeout=10)
    # A region's name is the worker's to type: shown as text, never as markup.
    arrived = {**ot.transition("enter", ot.now_s() + 1), "desc": "<b>Elm</b> St"}
    r = svc.http.post("/owntracks/pub", content=ot.encode(arrived), auth=(phone_id, secret))
    assert r.status_code == 200
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)

    page.locator("#queue tbody tr").first.click()
    events = page.locator("#d-facts .visit-events li")
    expect(events).to_have_count(2)
    expect(events.first).to_contain_text("Started for 30 min")
    expect(events.nth(1)).to_contain_text("Arrived at <b>Elm</b> St (OwnTracks region)")
    expect(page.locator("#d-facts .visit-events b")).to_have_count(0)


def test_fleet_view_for_supervisors(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("lead", Role.SUPERVISOR)
    _, b = svc.badge("badge-ui5", name="Kim Park")
    badge, _ = svc.badge("badge-ui6")
    badge.publish_raw("heartbeat", '{"v":1,"ts":1,"batt":50}')
    page = sign_in(browser, base, "lead")
    page.click("#tab-fleet")
    expect(page.locator("#console")).to_be_hidden()
    expect(page.locator("#devices")).to_contain_text("Kim Park")
    expect(page.locator("#devices")).to_contain_text(b.device_id)
    expect(page.locator("#refused")).to_contain_text("ts: Input should be greater than or equal")


def test_operators_do_not_get_the_fleet_tab(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("olly", Role.OPERATOR)
    page = sign_in(browser, base, "olly")
    expect(page.locator("#tab-fleet")).to_be_hidden()
    expect(page.locator("#tab-review")).to_be_hidden()


def test_the_console_is_told_the_services_vocabulary(svc: Running) -> None:
    """What the console draws with comes from the service's own rules, not its JavaScript."""
    assert svc.http.get("/api/v1/console/meta").status_code == 401
    op = svc.user("vocab", Role.OPERATOR)
    meta = svc.http.get("/api/v1/console/meta", headers=op).json()
    assert [t["value"] for t in meta["alert_types"]] == [t.value for t in AlertType]
    assert {t["value"]: t["label"] for t in meta["alert_types"]}["red"] == "Panic"
    assert [o["value"] for o in meta["outcomes"]] == [o.value for o in Outcome]
    assert all(x["label"] for x in meta["alert_types"] + meta["outcomes"])
    assert set(meta["active_states"]) == {s.value for s in ACTIVE_STATES}
    assert meta["transitions"]["raised"] == ["acknowledged", "resolved", "cancelled"]
    assert meta["transitions"]["resolved"] == []
    assert meta["low_battery_pct"] == 15
    assert meta["supervising_roles"] == ["supervisor", "admin"]
    assert "notification" in meta["escalation_kinds"]
    assert "escalation_error" not in meta["escalation_kinds"]
    # The threshold is the service's setting, whatever it is set to.
    svc.restart(low_battery_pct=30)
    assert svc.http.get("/api/v1/console/meta", headers=op).json()["low_battery_pct"] == 30


def test_expired_session_returns_to_sign_in(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, browser: BrowserContext
) -> None:
    with running(
        service_settings(tmp_path / "data", db_url, mqtt_broker, token_ttl_s=6), mqtt_broker
    ) as svc:
        base = svc.serve_http()
        svc.user("pat", Role.OPERATOR)
        page = sign_in(browser, base, "pat")
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#login-note")).to_contain_text("session has expired")


def test_usable_from_the_keyboard(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("kay", Role.OPERATOR)
    page = browser.new_page()
    page.goto(base + "/")
    # Sign in without the mouse.
    page.locator("input[name=username]").focus()
    page.keyboard.type("kay")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#conn")).to_have_text("live")
    badge, _ = svc.badge("badge-ui7", name="Lee Keys")
    badge.raise_alert(type="red")
    row = page.locator("#queue tbody tr").first
    expect(row).to_contain_text("Lee Keys", timeout=5_000)
    row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#d-title")).to_contain_text("Lee Keys")
    page.locator("#ack").focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("kay", timeout=5_000)


def test_escalation_shows_in_the_timeline_and_links_open_the_alert(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, browser: BrowserContext
) -> None:
    steps = """
policies:
  - name: Console test
    steps:
      - {channel: console}
      - {after: 1, channel: sms, to: [backup]}
"""
    # No Twilio: the SMS goes to the outbox, and the console shows what it would have said.
    with escalating(tmp_path, db_url, mqtt_broker, None, steps) as svc:
        base = svc.serve_http()
        svc.user("erin", Role.OPERATOR)
        page = sign_in(browser, base, "erin")
        badge, _ = svc.badge("badge-ui-esc", name="Tom Reyes")
        badge.raise_alert(type="red")
        page.locator("#queue tbody tr").first.click()
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("Escalation policy 'Console test' started")
        expect(timeline).to_contain_text("step 1 of 2: operators, on the console")
        # The SMS step a second later appears without reloading: the pane follows events.
        expect(timeline.locator("li.esc", has_text="kept in the outbox")).to_contain_text(
            "Tom Reyes", timeout=5_000
        )
        expect(timeline.locator(".status.outbox")).to_have_count(1)

        other = badge.raise_alert(type="man_down")
        pk = alert_pk(svc, other)
        page.goto(f"{base}/#alert={pk}")  # the link an SMS carries
        expect(page.locator("#d-title")).to_contain_text("Tom Reyes", timeout=5_000)
        expect(page.locator("#d-title")).to_contain_text(re.compile("man", re.IGNORECASE))


def test_review_pages_for_the_safety_lead(svc: Running, browser: BrowserContext) -> None:
    base = svc.serve_http()
    op = svc.user("ola", Role.OPERATOR)
    svc.user("lead", Role.SUPERVISOR)
    nia, _ = svc.badge("badge-rv1", name="Nia <b>Okoro</b>", team="Housing")
    tom, _ = svc.badge("badge-rv2", name="Tom Reyes", team="Nursing")
    for i in range(3):  # a short trail before the alert
        nia.send_location(lat=51.5 + i * 0.0005, lon=-0.12, acc=8, qos=1)
    raised = [nia.raise_alert(type="red"), tom.raise_alert(type="test")]
    for device, alert_id in zip((nia, tom), raised, strict=True):
        device.wait_for("alert_received", alert_id=alert_id, timeout=10)
    first, second = (alert_pk(svc, a) for a in raised)
    svc.http.post(f"/api/v1/alerts/{first}/acknowledge", headers=op)
    svc.http.post(f"/api/v1/alerts/{first}/notes", json={"text": "Tenant ARRESTED"}, headers=op)
    for pk, outcome in ((first, "genuine_emergency"), (second, "false_alarm")):
        r = svc.http.post(f"/api/v1/alerts/{pk}/resolve", json={"outcome": outcome}, headers=op)
        assert r.status_code == 200, r.text

    page = sign_in(browser, base, "lead")
    page.click("#tab-review")
    expect(page.locator("#console")).to_be_hidden()
    rows = page.locator("#incidents tbody tr")
    expect(rows).to_have_count(2)
    # Search in the notes: one incident left, its worker's name shown as text.
    page.fill("#rv-filters input[name=q]", "arrested")
    page.click("#rv-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nia <b>Okoro</b>")
    page.fill("#rv-filters input[name=q]", "")
    page.select_option("#rv-filters select[name=type]", "test")
    page.click("#rv-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Tom Reyes")
    page.click("#rv-csv")
    expect(page.locator("body")).to_have_attribute(
        "data-downloaded", re.compile(r"^vigil-incidents-.*\.csv$")
    )
    page.select_option("#rv-filters select[name=type]", "")
    page.select_option("#rv-filters select[name=outcome]", "genuine_emergency")
    page.click("#rv-filters button[type=submit]")
    expect(rows).to_have_count(1)
    # The test alert's row, one as well, stays until the answer comes: wait for Nia's.
    expect(rows.first).to_contain_text("Nia <b>Okoro</b>")

    rows.first.click()
    expect(page.locator("#rv-title")).to_contain_text("Nia <b>Okoro</b>")
    timeline = page.locator("#rv-timeline")
    expect(timeline).to_contain_text("Tenant ARRESTED")
    expect(timeline).to_contain_text("Resolved: Genuine emergency")
    entries = svc.http.get(f"/api/v1/alerts/{first}", headers=op).json()["timeline"]
    expect(timeline.locator("code.hash")).to_have_count(len(entries))
    expect(timeline.locator("code.hash").last).to_have_text(entries[-1]["hash"])
    expect(page.locator("#rv-head")).to_contain_text(f"entry {len(entries)}")
    expect(page.locator("#rv-map")).to_have_attribute("data-points", re.compile(r"[2-9]|\d\d"))
    page.click("#rv-pdf")
    expect(page.locator("body")).to_have_attribute("data-downloaded", f"vigil-incident-{first}.pdf")
    page.click("#rv-back")
    expect(rows).to_have_count(1)

    page.click("#rv-tab-reports")
    expect(page.locator("#chart-weeks")).to_have_attribute("data-bars", "2")  # red and test
    expect(page.locator("#chart-weeks rect.bar")).to_have_count(2)
    expect(page.locator("#chart-targets")).to_have_attribute("data-targets", re.compile(r"met"))
    expect(page.locator("#chart-targets rect.bar")).to_have_count(2)
    expect(page.locator("#rv-card-false")).to_contain_text("50.0 %")
    expect(page.locator("#rv-card-false")).to_contain_text("1 of 2")
    expect(page.locator("#rv-stale")).to_contain_text(nia.device_id)
