"""The console's maps in Chromium: the fleet map (markers, live, click to open), a map without
tiles (scale, coordinates to copy, a geo: link, the note), and an alert whose position is
withheld by the privacy rules saying so."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.users.models import Role
from tests.browsers import sign_in, watched_context
from tests.support import Running, wait_until


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    # The browser tests are about the console; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _pk(svc: Running, device_alert_id: str) -> int:
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
    assert pk is not None
    return pk


def test_fleet_map_shows_who_needs_watching_and_opens_the_alert(
    svc: Running, chrome: BrowserContext, chromium: Browser
) -> None:
    base = svc.serve_http()
    svc.user("mara", Role.OPERATOR)  # operators have the map too
    panic, _ = svc.badge("fm-panic", name="Nia Okoro")
    visiting, _ = svc.badge("fm-visit", name="Tom Reyes")
    idle, _ = svc.badge("fm-idle", name="Ida Idle")
    panic.send_location(51.5072, -0.1276, qos=1)
    alert_id = panic.raise_alert(type="red")
    visiting.send_location(51.5150, -0.1000, qos=1)
    visiting.start_visit(duration_s=1800, note="12 Elm St")
    idle.send_location(51.5000, -0.1500, qos=1)
    panic.wait_for("alert_received", alert_id=alert_id, timeout=10)

    page = sign_in(chrome, base, "mara")
    page.click("#tab-map")
    markers = page.locator("#fm-map path.fm-marker")
    expect(markers).to_have_count(2)
    alert_marker = page.locator(f'#fm-map path[data-alert="{_pk(svc, alert_id)}"]')
    expect(alert_marker).to_have_class("fm-marker fm-red fm-unanswered leaflet-interactive")
    expect(page.locator('#fm-map path[data-worker="Tom Reyes"]')).to_have_attribute(
        "data-status", "visit"
    )
    expect(page.locator("#fm-list")).to_contain_text("12 Elm St")
    expect(page.locator("#fm-list")).not_to_contain_text("Ida Idle")
    # No tiles configured: a scale, and the note saying so.
    expect(page.locator("#fm-map .leaflet-control-scale")).to_be_visible()
    expect(page.locator("#fm-notes")).to_contain_text("Map tiles are not configured")

    # A visit's marker tells who, where they said they would be, and the time left.
    popup = page.locator(".leaflet-popup-content")

    def opened() -> bool:
        # The first fit animates: a click that lands while the map moves is lost, so click
        # again, as a person would.
        page.locator('#fm-map path[data-worker="Tom Reyes"]').click()
        try:
            popup.wait_for(state="visible", timeout=1_000)
        except PlaywrightTimeoutError:
            return False
        return True

    wait_until(opened, timeout=15, what="the visit's popup")
    expect(popup).to_contain_text("12 Elm St")
    expect(popup).to_contain_text("min left")
    expect(popup.locator(".geo-link")).to_have_attribute("href", "geo:51.515,-0.1")
    # The map's next refresh leaves it open for the person reading it, and changes the
    # markers in place rather than making new ones a click could fall between.
    page.evaluate(
        """document.querySelector('#fm-map path[data-worker="Tom Reyes"]').dataset.probe = 'kept'"""
    )
    page.evaluate("loadFleetMap()")
    page.wait_for_timeout(300)
    expect(popup).to_contain_text("12 Elm St")
    expect(page.locator('#fm-map path[data-worker="Tom Reyes"]')).to_have_attribute(
        "data-probe", "kept"
    )

    # Live: the visiting worker's man-down turns their marker into an alert, without a reload.
    second = visiting.raise_alert(type="man_down")
    visiting.wait_for("alert_received", alert_id=second, timeout=10)
    expect(page.locator('#fm-map path[data-worker="Tom Reyes"]')).to_have_attribute(
        "data-alert", str(_pk(svc, second)), timeout=5_000
    )

    # A new alert far outside the view brings the map to it: an alarm is never off screen.
    idle.send_location(53.4808, -2.2426, qos=1)
    far = idle.raise_alert(type="red")
    idle.wait_for("alert_received", alert_id=far, timeout=10)
    far_marker = page.locator('#fm-map path[data-worker="Ida Idle"]')
    expect(far_marker).to_have_count(1)
    page.wait_for_timeout(500)  # the fit's animation
    shown, view = far_marker.bounding_box(), page.locator("#fm-map").bounding_box()
    assert shown is not None and view is not None
    assert view["x"] <= shown["x"] <= view["x"] + view["width"]
    assert view["y"] <= shown["y"] <= view["y"] + view["height"]

    alert_marker.click()
    expect(page.locator("#console")).to_be_visible()
    expect(page.locator("#d-title")).to_contain_text("Nia Okoro")

    # At a phone's width the map and its list fit the screen.
    phone, blocked = watched_context(chromium, 390, 844)
    try:
        small = sign_in(phone, base, "mara")
        small.click("#tab-map")
        expect(small.locator("#fm-map path.fm-marker")).to_have_count(3)
        box = small.locator("#fm-map").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        small.locator("#fm-list .fm-open", has_text="Tom Reyes").click()
        expect(small.locator("#d-title")).to_contain_text("Tom Reyes")
        assert blocked == []
    finally:
        phone.close()


def test_an_alert_without_tiles_and_with_its_position_withheld(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("olu", Role.OPERATOR)
    chrome.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    badge, _ = svc.badge("fm-detail", name="Ana Lima")
    badge.send_location(51.5072, -0.1276, acc=5.0, qos=1)
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    pk = _pk(svc, alert_id)

    page = sign_in(chrome, base, "olu")
    page.locator("#queue tbody tr").first.click()
    place = page.locator("#map-place")
    expect(place.locator(".coords")).to_have_text("51.50720, -0.12760")
    expect(place.locator(".geo-link")).to_have_attribute("href", "geo:51.5072,-0.1276")
    expect(place.locator(".fix-age")).to_contain_text(" s ago")
    expect(place).to_contain_text("Map tiles are not configured")
    expect(page.locator("#map .leaflet-control-scale")).to_be_visible()
    expect(page.locator("#d-facts")).to_contain_text("51.50720, -0.12760 (±5 m)")
    place.locator(".copy-coords").click()
    expect(place.locator(".copy-coords")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "51.50720, -0.12760"

    # Once the alert is over, an operator may not see where the worker was: the pane says
    # so, rather than "unknown" over an empty map.
    ops = svc.login("olu")
    r = svc.http.post(
        f"/api/v1/alerts/{pk}/resolve", headers=ops, json={"outcome": "false_alarm", "note": "ok"}
    )
    assert r.status_code == 200, r.text
    page.evaluate(f"location.hash = '#alert={pk}'")
    expect(place.locator(".no-position")).to_contain_text("withheld by the privacy rules")
    expect(page.locator("#map")).to_be_hidden()
    expect(page.locator("#d-facts")).to_contain_text("withheld by the privacy rules")
    expect(place.locator(".coords")).to_have_count(0)
