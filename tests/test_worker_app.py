"""The worker app in real browsers (Debian's Chromium, and Firefox ESR for the panic), a
phone-sized page against the real service over HTTP and the real Mosquitto through the relay:
fake geolocation, a fake microphone, `set_offline` for a network that goes away.

One browser per engine for the module; each test has its own browser profile. Recordings are
cut short (the app's `clip_ms` setting) so the clips of an alert come within seconds. One test
waits out a whole visit: the protocol's shortest is 60 s."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Geolocation,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)
from sqlalchemy import func, select, update

from monitor.alerts.models import Alert, AlertEvent
from monitor.devices.models import Device, LocationFix
from monitor.evidence.models import Evidence
from monitor.users.models import Role
from monitor.visits.models import Visit
from tests.browsers import ARGS, CHROMIUM, FIREFOX, SHOTS, shoot
from tests.support import Badge, Running, add_badge, wait_until

# The console tests' browsers and flags, plus a microphone that plays a tone, allowed
# without asking.
CHROMIUM_ARGS = [*ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
FIREFOX_PREFS: dict[str, str | float | bool] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "permissions.default.microphone": 1,
    "permissions.default.geo": 1,
}
PHONE: ViewportSize = {"width": 390, "height": 844}
HERE: Geolocation = {"latitude": 51.5072, "longitude": -0.1276, "accuracy": 8}
# Short clips so an alert's recordings come quickly; the fallback offered soon.
FAST = {"clip_ms": 1500, "fallback_s": 2}
# VIGIL_SCREENSHOTS=docs/images: the tests also take the docs' screenshots.
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(pw: Playwright) -> Iterator[Browser]:
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def firefox(pw: Playwright) -> Iterator[Browser]:
    # Debian's Firefox ESR over WebDriver BiDi, as tests/test_console.py drives it.
    b = pw.firefox.launch(
        channel="moz-firefox", executable_path=FIREFOX, firefox_user_prefs=FIREFOX_PREFS
    )
    yield b
    b.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # The browser tests are about the app; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


class Phone:
    """A browser profile the size of a phone, with a position and a microphone; it fails the
    test on a script error or anything the content security policy blocked."""

    def __init__(self, browser: Browser, *, chromium: bool = True) -> None:
        extra: dict[str, Any] = {"device_scale_factor": 2} if SHOTS else {}
        self.context: BrowserContext = browser.new_context(
            viewport=PHONE, geolocation=HERE, **extra
        )
        # Firefox's microphone is allowed by its preferences (FIREFOX_PREFS).
        self.context.grant_permissions(
            ["geolocation", "microphone"] if chromium else ["geolocation"]
        )
        self.problems: list[str] = []
        self.context.on("page", self._watch)

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        page.on(
            "console",
            lambda m: (
                self.problems.append(m.text)
                if "Content-Security-Policy" in m.text or "Content Security Policy" in m.text
                else None
            ),
        )

    def open(self, base: str, creds: dict[str, Any] | None = None, **settings: Any) -> Page:
        """The app, already enrolled with `creds` when given (its storage set before any of
        its scripts run, on the first load only)."""
        page = self.context.new_page()
        values = {"vigil.app.settings": {**FAST, **settings}}
        if creds is not None:
            values["vigil.app.creds"] = creds
        script = "".join(
            f"if (localStorage.getItem({json.dumps(k)}) === null) "
            f"localStorage.setItem({json.dumps(k)}, {json.dumps(json.dumps(v))});"
            for k, v in values.items()
        )
        # (Not in the about:blank a new page starts with: its storage is off limits.)
        page.add_init_script(f"if (location.protocol.startsWith('http')) {{ {script} }}")
        page.goto(base + "/app/")
        return page

    def close(self) -> None:
        self.context.close()
        assert self.problems == [], self.problems


@pytest.fixture
def phones(chromium: Browser) -> Iterator[Callable[..., Phone]]:
    made: list[Phone] = []

    def make(browser: Browser | None = None, *, chromium_engine: bool = True) -> Phone:
        p = Phone(browser or chromium, chromium=chromium_engine)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def creds(b: Badge, name: str = "Alex Worker") -> dict[str, Any]:
    return {
        "device_id": b.device_id,
        "secret": b.secret,
        "mqtt_url": "",
        "worker_name": name,
        "heartbeat_s": 300,
        "centre_phone": "+441632960000",
    }


def badge(svc: Running, prefix: str, name: str = "Alex Worker") -> Badge:
    b = add_badge(svc.store, f"{prefix}-{uuid.uuid4().hex[:6]}", name=name)
    svc.broker.load_registry(svc.store)
    return b


def connected(page: Page) -> None:
    expect(page.locator("#conn")).to_have_text("Connected", timeout=15_000)


def press_panic(page: Page) -> None:
    """Press and hold the button until the alert screen shows (the hold is the app's own)."""
    box = page.locator("#panic").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(page.locator("#alert")).to_be_visible()
    page.mouse.up()


def key_pin(page: Page, pin: str) -> None:
    for d in pin:
        page.click(f'.pad [data-digit="{d}"]')
    page.click("#pin-ok")


def outbox(page: Page, suffix: str = "") -> int:
    """Messages the app keeps until they are delivered (of one kind, if `suffix`)."""
    return int(
        page.evaluate(
            "(s) => JSON.parse(localStorage.getItem('vigil.app.outbox') || '[]')"
            ".filter((e) => !s || e.suffix === s).length",
            suffix,
        )
    )


def clips_waiting(page: Page) -> int:
    return int(
        page.evaluate(
            """() => new Promise((resolve) => {
              const open = indexedDB.open("vigil-app", 1);
              open.onupgradeneeded = () =>
                open.result.createObjectStore("clips", { keyPath: "id" });
              open.onsuccess = () => {
                const req = open.result.transaction("clips").objectStore("clips").count();
                req.onsuccess = () => { open.result.close(); resolve(req.result); };
              };
            })"""
        )
    )


def storage(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            "Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)]))"
        )
    )


def device_alerts(svc: Running, device_id: str) -> list[Alert]:
    with svc.store.session() as db:
        return list(
            db.scalars(select(Alert).where(Alert.device_id == device_id).order_by(Alert.id))
        )


def timeline(svc: Running, alert_pk: int) -> list[str]:
    with svc.store.session() as db:
        return list(db.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == alert_pk)))


def verified_clips(svc: Running, *, alert_pk: int | None = None, device_id: str = "") -> int:
    """Clips whose bytes were uploaded and matched the sha256 their evidence message gave."""
    with svc.store.session() as db:
        q = select(Evidence).where(
            Evidence.sha256.is_not(None), Evidence.uploaded_sha256 == Evidence.sha256
        )
        q = q.where(Evidence.alert_id == alert_pk) if alert_pk else q
        q = q.where(Evidence.device_id == device_id) if device_id else q
        return len(db.scalars(q).all())


def first_fix(svc: Running, device_id: str) -> LocationFix | None:
    with svc.store.session() as db:
        return db.scalars(
            select(LocationFix).where(LocationFix.device_id == device_id).order_by(LocationFix.id)
        ).first()


# ---- the panic, end to end ----


def panic_end_to_end(svc: Running, phone: Phone, prefix: str, *, shots: bool = True) -> None:
    base = svc.serve_http()
    operator = svc.user(f"op-{prefix}", Role.OPERATOR)
    b = badge(svc, prefix, name="Nia Okoro")
    page = phone.open(base, creds(b, "Nia Okoro"))
    connected(page)
    expect(page.locator("#home")).to_be_visible()
    if shots:
        shoot(page, "worker-app-home")

    press_panic(page)
    expect(page.locator("#alert-stage")).to_have_text(
        "The monitoring centre has your alert", timeout=15_000
    )
    expect(page.locator("#listening")).to_contain_text("Recording")
    if shots:
        shoot(page, "worker-app-received")
    alert = wait_until(lambda: device_alerts(svc, b.device_id), what="the alert row")[0]
    assert (alert.type, alert.trigger, alert.state) == ("red", "app", "raised")
    # Where the worker is: with the alert, from the fix read while the button was held; or,
    # when the phone had none by the end of the hold (a loaded machine), in the position
    # sent as the first fix comes (the alert never waits for one).
    if alert.lat is not None:
        assert (alert.lat, alert.lon) == pytest.approx((HERE["latitude"], HERE["longitude"]))
    first = wait_until(lambda: first_fix(svc, b.device_id), timeout=15, what="a position")
    assert (first.lat, first.lon) == pytest.approx((HERE["latitude"], HERE["longitude"]))
    # The microphone, clip after clip, each checked against its sha256 by the service.
    wait_until(
        lambda: verified_clips(svc, alert_pk=alert.id) >= 2, timeout=30, what="two audio clips"
    )
    # The worker can stop the recording; what was recorded stays with the centre.
    page.click("#rec-toggle")
    expect(page.locator("#listening")).to_have_text(
        "Recording stopped. What was recorded before is still sent to the centre."
    )
    expect(page.locator("#rec-toggle")).to_have_text("Record sound again")
    # ...and the operator listening sees why the clips stopped.
    wait_until(
        lambda: "recording_stopped" in timeline(svc, alert.id), what="the stop in the timeline"
    )
    # Positions go while the alert is active.
    with svc.store.session() as db:
        assert db.scalar(
            select(func.count())
            .select_from(LocationFix)
            .where(LocationFix.device_id == b.device_id)
        )

    r = svc.http.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=operator)
    assert r.status_code == 200, r.text
    expect(page.locator("#alert-stage")).to_have_text("Help is on the way", timeout=15_000)
    if shots:
        shoot(page, "worker-app-help-on-the-way")

    r = svc.http.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"outcome": "worker_safe"}, headers=operator
    )
    assert r.status_code == 200, r.text
    expect(page.locator("#ended-title")).to_have_text("Closed", timeout=15_000)
    expect(page.locator("#alert-stage")).to_have_text("")
    page.click("#ended-ok")
    expect(page.locator("#home")).to_be_visible()
    assert page.evaluate("localStorage.getItem('vigil.app.alert')") is None


def test_panic_end_to_end(svc: Running, phones: Callable[..., Phone]) -> None:
    panic_end_to_end(svc, phones(), "app-panic")


def test_panic_end_to_end_in_firefox(
    svc: Running, phones: Callable[..., Phone], firefox: Browser
) -> None:
    # (No screenshots: Firefox reports the style a screenshot adds as a policy violation.)
    panic_end_to_end(svc, phones(firefox, chromium_engine=False), "app-panic-ff", shots=False)


# ---- cancel and duress ----


def normalised(text: str, b: Badge, alert_id: str | None) -> str:
    text = text.replace(b.device_id, "DEVICE").replace(b.secret, "SECRET")
    if alert_id:
        text = text.replace(alert_id, "ALERT")
    return UUID_RE.sub("UUID", text)


def cancel_with(svc: Running, phone: Phone, base: str, pin: str) -> tuple[str, dict[str, str]]:
    b = badge(svc, "app-pin")
    page = phone.open(base, creds(b))
    connected(page)
    press_panic(page)
    expect(page.locator("#alert-stage")).to_have_text(
        "The monitoring centre has your alert", timeout=15_000
    )
    alert_id = page.evaluate("JSON.parse(localStorage.getItem('vigil.app.alert')).id")
    wait_until(lambda: verified_clips(svc, device_id=b.device_id) >= 1, timeout=30, what="a clip")
    page.click("#cancel-alert")
    expect(page.locator("#pin")).to_be_visible()
    shoot(page, "worker-app-pin")  # in both cases: a screenshot leaves its mark on the page
    key_pin(page, pin)
    expect(page.locator("#ended-title")).to_have_text("Alert cancelled", timeout=15_000)
    # Whatever was recorded up to the cancel is still delivered, in both cases alike.
    wait_until(lambda: outbox(page) == 0 and clips_waiting(page) == 0, what="the outbox empty")
    page.wait_for_function("() => !document.querySelector('#listening').textContent")
    return normalised(page.content(), b, alert_id), {
        k: normalised(v, b, alert_id) for k, v in storage(page).items()
    }


def test_cancel_and_duress_leave_the_same_page_and_storage(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    real_page, real_storage = cancel_with(svc, phones(), base, "1234")
    duress_page, duress_storage = cancel_with(svc, phones(), base, "9876")
    assert duress_page == real_page
    assert duress_storage == real_storage
    # ...while the service knows one from the other.
    with svc.store.session() as db:
        alerts = db.scalars(
            select(Alert).where(Alert.device_id.like("app-pin-%")).order_by(Alert.id)
        ).all()
    assert [(a.state, a.duress) for a in alerts] == [("cancelled", False), ("raised", True)]


# ---- offline ----


def test_a_panic_pressed_offline_is_delivered_once_when_the_network_returns(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    b = badge(svc, "app-offline")
    phone = phones()
    page = phone.open(base, creds(b))
    connected(page)
    # The service worker keeps the app's files: the app opens again without a network.
    page.wait_for_function("() => !!navigator.serviceWorker.controller")

    phone.context.set_offline(True)
    expect(page.locator("#conn")).to_have_text("No connection", timeout=15_000)
    press_panic(page)
    expect(page.locator("#alert-stage")).to_have_text("Sending…")
    # Not received in time: the phone's own ways to reach the centre are offered.
    expect(page.locator("#fallback")).to_be_visible()
    expect(page.locator("#fallback-call")).to_have_attribute("href", "tel:+441632960000")
    expect(page.locator("#fallback-sms")).to_have_attribute(
        "href", re.compile(r"^sms:\+441632960000")
    )
    shoot(page, "worker-app-not-sent-yet")
    # The page reloaded while offline, from the service worker: the alert is still kept.
    page.reload()
    expect(page.locator("#alert-stage")).to_have_text("Sending…")
    assert outbox(page, "alert") == 1
    assert device_alerts(svc, b.device_id) == []

    phone.context.set_offline(False)
    expect(page.locator("#alert-stage")).to_have_text(
        "The monitoring centre has your alert", timeout=20_000
    )
    alerts = device_alerts(svc, b.device_id)
    assert len(alerts) == 1
    assert alerts[0].device_alert_id == page.evaluate(
        "JSON.parse(localStorage.getItem('vigil.app.alert')).id"
    )
    wait_until(lambda: outbox(page, "alert") == 0, what="the alert out of the outbox")
    expect(page.locator("#fallback")).to_be_hidden()


# ---- a timed visit ----


MINUTE = timedelta(seconds=60)


def test_a_visit_through_due_to_overdue(svc: Running, phones: Callable[..., Phone]) -> None:
    """The protocol's shortest visit is 60 s: once it is stored, its deadline is brought
    forward in the store, as if the minute had passed (the grace is set to none)."""
    svc.restart(visit_grace_s=0)
    base = svc.serve_http()
    b = badge(svc, "app-visit")
    page = phones().open(base, creds(b))
    connected(page)
    page.click("#visit-new")
    page.fill("#visit-address", "12 Elm St, flat 3")
    page.fill("#visit-note", "hostile father")
    page.click("#memo-rec")
    expect(page.locator("#memo-state")).to_contain_text("Recording")
    page.wait_for_timeout(1200)  # a memo of about a second
    page.click("#memo-rec")
    expect(page.locator("#memo-state")).to_contain_text("Voice memo recorded")
    page.check("input[name=minutes][value=other]")
    page.fill("#visit-minutes", "1")
    shoot(page, "worker-app-visit-start")
    page.click("#visit-start-form button[type=submit]")
    expect(page.locator("#visit-msg")).to_have_text(
        "The monitoring centre has your visit.", timeout=15_000
    )
    shoot(page, "worker-app-visit")

    def visit() -> Visit | None:
        with svc.store.session() as db:
            return db.scalar(select(Visit).where(Visit.device_id == b.device_id))

    v = wait_until(visit, what="the visit row")
    assert v.note == "12 Elm St, flat 3 — hostile father"
    assert v.duration_s == 60 and v.memo and v.memo.startswith("memo-")
    assert (v.lat, v.lon) == (pytest.approx(HERE["latitude"]), pytest.approx(HERE["longitude"]))
    wait_until(lambda: verified_clips(svc, device_id=b.device_id) == 1, timeout=15, what="the memo")
    with svc.store.session() as db:
        memo = db.scalar(select(Evidence).where(Evidence.device_id == b.device_id))
        assert memo is not None and (memo.evidence_id, memo.visit_id) == (v.memo, v.id)

    # Time is up: the whole screen, and with no grace, the overdue alert at once.
    with svc.store.begin() as db:
        db.execute(update(Visit).where(Visit.id == v.id).values(due_at=v.due_at - MINUTE))
    expect(page.locator("#due")).to_be_visible(timeout=30_000)
    shoot(page, "worker-app-visit-due")
    overdue = wait_until(lambda: device_alerts(svc, b.device_id), what="the overdue alert")[0]
    assert overdue.type == "visit_overdue"
    assert overdue.note and "Elm St" in overdue.note

    page.click("#due-checkin")
    expect(page.locator("#due")).to_be_hidden()
    expect(page.locator("#visit")).to_be_visible()
    page.click("#visit-end")
    key_pin(page, b.cancel_pin)
    expect(page.locator("#ended-title")).to_have_text("Visit ended", timeout=15_000)
    assert wait_until(lambda: (visit() or v).state == "ended", what="the visit ended")


# ---- revocation ----


def test_a_revoked_app_is_refused_by_the_broker(svc: Running, phones: Callable[..., Phone]) -> None:
    base = svc.serve_http()
    b = add_badge(svc.store, f"app-badge-{uuid.uuid4().hex[:6]}", name="Sam Lee")
    admin = svc.user("admin-revoke", Role.ADMIN)
    phone = phones()
    page = enrol(svc, phone, base, issue_link(svc, b.worker_id, admin))
    connected(page)
    # Enrolling the worker again (a new phone) revokes this one's credentials.
    issue_link(svc, b.worker_id, admin)
    svc.broker.load_registry(svc.store)
    # The broker refuses its next connection (here, once the network comes back).
    phone.context.set_offline(True)
    expect(page.locator("#conn")).to_have_text("No connection", timeout=15_000)
    phone.context.set_offline(False)
    expect(page.locator("#conn")).to_have_text("Cannot connect", timeout=20_000)
    expect(page.locator("#conn-detail")).to_contain_text("Ask your administrator")


# ---- enrolment ----


def issue_link(svc: Running, worker_id: int, headers: dict[str, str]) -> str:
    """The one-time enrolment link a supervisor gets for a worker, through the service's API."""
    r = svc.http.post(f"/api/v1/workers/{worker_id}/enrolments", headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["link"])


def enrol(svc: Running, phone: Phone, base: str, link: str) -> Page:
    """The link opened on the phone (at the test's own address), and the welcome awaited."""
    page = phone.context.new_page()
    page.goto(f"{base}/app/#enrol={link.split('#enrol=', 1)[1]}")
    expect(page.locator("#welcome")).to_contain_text(
        "This phone is now your panic alarm", timeout=15_000
    )
    # The new secret, at the test's broker (a service with VIGIL_BROKER_DIR does this itself).
    svc.broker.load_registry(svc.store)
    return page


def test_enrolment_from_the_link_and_a_second_use_refused(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    b = add_badge(svc.store, f"app-badge-{uuid.uuid4().hex[:6]}", name="Priya Shah")
    link = issue_link(svc, b.worker_id, svc.user("admin-enrol", Role.ADMIN))
    code = link.split("#enrol=", 1)[1]
    page = enrol(svc, phones(), base, link)
    expect(page.locator("#welcome")).to_have_text("This phone is now your panic alarm, Priya Shah.")
    # The code is gone from the address bar; the credentials are kept by the app.
    assert "enrol" not in page.url
    kept = json.loads(page.evaluate("localStorage.getItem('vigil.app.creds')"))
    assert kept["secret"]
    with svc.store.session() as db:
        device = db.get(Device, kept["device_id"])
        assert device is not None and device.worker_id == b.worker_id
    assert kept["worker_name"] == "Priya Shah"
    connected(page)
    shoot(page, "worker-app-enrolled")

    # The same link again, on another phone: refused, in plain words.
    other = phones().context.new_page()
    other.goto(f"{base}/app/#enrol={code}")
    expect(other.locator("#enrol-title")).to_have_text(
        "This enrolment link cannot be used", timeout=15_000
    )
    expect(other.locator("#enrol-detail")).to_contain_text("already been used, or it has expired")
    assert other.evaluate("localStorage.getItem('vigil.app.creds')") is None

    # Without a link, the app says how to get one.
    fresh = phones().context.new_page()
    fresh.goto(f"{base}/app/")
    expect(fresh.locator("#setup")).to_contain_text("enrolment link")


# ---- installing ----


def test_the_app_is_installable(svc: Running) -> None:
    """What a phone needs to install the app: the manifest, its icons, the service worker
    allowed the whole of /app/ and never kept by an HTTP cache."""
    r = svc.http.get("/app/manifest.webmanifest")
    assert r.headers["content-type"] == "application/manifest+json"
    manifest = r.json()
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == (
        "/app/",
        "/app/",
        "standalone",
    )
    assert manifest["name"] and manifest["short_name"] and manifest["theme_color"]
    kinds: set[tuple[int, str]] = set()
    for icon in manifest["icons"]:
        png = svc.http.get(icon["src"])
        assert png.headers["content-type"] == "image/png"
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png.content[16:20]), int.from_bytes(png.content[20:24])
        assert icon["sizes"] == f"{width}x{height}"
        kinds.add((width, icon.get("purpose", "any")))
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= kinds

    sw = svc.http.get("/app/sw.js")
    assert sw.headers["service-worker-allowed"] == "/app/"
    assert "no-store" in sw.headers["cache-control"]
    page = svc.http.get("/app/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'rel="manifest"' in page.text
    assert svc.http.get("/app", follow_redirects=False).headers["location"] == "/app/"


def test_one_window_of_the_app_at_a_time(svc: Running, phones: Callable[..., Phone]) -> None:
    """Two windows would take the broker's session from each other: the last one opened works,
    the other says so and can take over again."""
    base = svc.serve_http()
    b = badge(svc, "app-windows")
    phone = phones()
    first = phone.open(base, creds(b))
    connected(first)
    second = phone.context.new_page()
    second.goto(base + "/app/")
    connected(second)
    expect(first.locator("#elsewhere")).to_be_visible()
    expect(first.locator("#panic")).to_be_hidden()
    first.click("#use-here")
    connected(first)
    expect(second.locator("#elsewhere")).to_be_visible()
    press_panic(first)
    expect(first.locator("#alert-stage")).to_have_text(
        "The monitoring centre has your alert", timeout=15_000
    )
    assert len(device_alerts(svc, b.device_id)) == 1
