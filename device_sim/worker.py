"""The simulated person behind one device: walks, reports, runs visit timers, raises (and mostly
cancels) alerts, and answers `visit_due` by checking in.
"""

from __future__ import annotations

import logging
import math
import queue
import random
from dataclasses import dataclass

from device_sim.battery import Battery
from device_sim.commands import Command
from device_sim.credentials import DeviceKind
from device_sim.device import SimDevice
from device_sim.protocol import (
    ALERT_CANCELLED,
    ALERT_CLOSED,
    CANCEL_REJECTED,
    VISIT_DUE,
    VISIT_END_REJECTED,
    VISIT_ENDED,
)
from device_sim.route import Walker

log = logging.getLogger(__name__)

VISIT_NOTES = (
    "Home visit, 14 Elm St",
    "Home visit, 3 Church Lane, flat 2",
    "Tenancy inspection, 27 Mill Road",
    "School attendance check, 8 Oak Avenue",
    "Welfare check, 55 Station Road, flat 11",
    "Care visit, 19 Park Terrace",
    "Community nurse visit, 6 Willow Close",
    "Repairs survey, Riverside Estate block C",
)
FIRMWARE: dict[DeviceKind, str] = {"badge": "2.3.1", "phone": "5.12.0"}
# An alert no one closes is forgotten after this long, so the worker can raise another.
ALERT_FORGET_S = 1800.0


@dataclass(frozen=True)
class Behaviour:
    """How often things happen; shared by every worker of a fleet."""

    location_every_s: float = 30.0
    heartbeat_every_s: float = 60.0
    alert_rate_per_hour: float = 0.5
    visit_rate_per_hour: float = 1.0
    false_alarm_share: float = 0.8
    cancel_after_s: tuple[float, float] = (15.0, 90.0)
    visit_duration_s: tuple[int, int] = (600, 2400)


@dataclass
class _Alert:
    alert_id: str
    cancel_at: float | None
    forget_at: float


@dataclass
class _Visit:
    visit_id: str
    action: str  # what the worker will do next: "extend" or "end"
    at: float  # when; once ending, when to give up waiting for visit_ended
    ending: bool = False


class SimWorker:
    """Drives one SimDevice; step() is called by the fleet's single simulation thread."""

    def __init__(
        self,
        device: SimDevice,
        kind: DeviceKind,
        rng: random.Random,
        behaviour: Behaviour,
        walker: Walker,
    ) -> None:
        self.device = device
        self.kind = kind
        self._rng = rng
        self._b = behaviour
        self._walker = walker
        # Phones drain faster than badges; both last a working day or more.
        self._battery = Battery(rng, drain_per_h=6.0 if kind == "phone" else 2.5)
        self._inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._last = self._next_location = self._next_heartbeat = 0.0
        self._wake_at = 0.0  # when step() next has something to do
        self._alert: _Alert | None = None
        self._visit: _Visit | None = None
        device.fw = FIRMWARE[kind]
        device.rssi = rng.randint(-90, -60)
        self._sync_device()
        device.add_listener(self._inbox.put)

    @property
    def name(self) -> str:
        return self.device.device_id

    def begin(self, now: float) -> None:
        """Start the clock: report soon, so the map fills at once, then spread out."""
        self._last = now
        self._next_location = now + self._rng.uniform(0.0, min(1.0, self._b.location_every_s))
        self._next_heartbeat = now + self._rng.uniform(0.0, min(2.0, self._b.heartbeat_every_s))
        self._wake_at = now

    def due(self, now: float) -> bool:
        """Whether step() has anything to do now: a report or timer due, a command waiting,
        or, where alerts and visits happen at random, every tick. Skipping the rest keeps a
        fleet of 10,000 that only reports cheap to simulate."""
        return now >= self._wake_at or not self._inbox.empty()

    def step(self, now: float) -> None:
        dt, self._last = max(0.0, now - self._last), now
        self._walker.step(dt)
        self._battery.step(dt)
        self._sync_device()
        while not self._inbox.empty():
            self._on_command(self._inbox.get_nowait(), now)
        if now >= self._next_location:
            self._next_location = now + self._jitter(self._b.location_every_s)
            self._send_location()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._jitter(self._b.heartbeat_every_s)
            self.device.rssi = max(-110, min(-50, self.device.rssi + self._rng.randint(-3, 3)))
            self.device.heartbeat()
        self._step_alert(now, dt)
        self._step_visit(now, dt)
        idle = self._alert is None and self._visit is None
        if idle and self._b.alert_rate_per_hour == 0 and self._b.visit_rate_per_hour == 0:
            # Walking and the battery catch up at the next step: they integrate over dt.
            self._wake_at = min(self._next_location, self._next_heartbeat)
        else:
            self._wake_at = now

    # --- alerts -----------------------------------------------------------------------------

    def _step_alert(self, now: float, dt: float) -> None:
        alert = self._alert
        if alert is None:
            if self._happens(self._b.alert_rate_per_hour, dt):
                self._raise_alert(now)
            return
        if alert.cancel_at is not None and now >= alert.cancel_at:
            alert.cancel_at = None
            log.info(
                "%s cancels alert %s with the cancel PIN (false alarm)", self.name, alert.alert_id
            )
            self.device.cancel_alert(alert.alert_id, self.device.cancel_pin)
        elif now >= alert.forget_at:
            self._alert = None

    def _raise_alert(self, now: float) -> None:
        kind = self._rng.choices(("red", "test", "man_down"), weights=(0.55, 0.3, 0.15))[0]
        if kind == "man_down":
            trigger = self._rng.choice(("fall", "impact")) if self.kind == "badge" else "fall"
        else:
            trigger = "button" if self.kind == "badge" else "app"
        note = "Scheduled device test" if kind == "test" else None
        alert_id = self.device.raise_alert(type=kind, trigger=trigger, note=note)
        cancel_at = None
        if self._rng.random() < self._b.false_alarm_share:
            cancel_at = now + self._rng.uniform(*self._b.cancel_after_s)
        self._alert = _Alert(alert_id, cancel_at, now + ALERT_FORGET_S)
        lat, lon = self.device.position
        log.info(
            "%s raised %s alert %s (%s) at %.5f,%.5f", self.name, kind, alert_id, trigger, lat, lon
        )

    # --- visits -----------------------------------------------------------------------------

    def _step_visit(self, now: float, dt: float) -> None:
        visit = self._visit
        if visit is None:
            if self._alert is None and self._happens(self._b.visit_rate_per_hour, dt):
                self._start_visit(now)
            return
        if now < visit.at:
            return
        if visit.ending:
            self._visit = None  # no visit_ended came back (no service?): move on anyway
            return
        if visit.action == "extend":
            extra = self._rng.randint(600, 1200)
            log.info("%s extends visit %s by %d min", self.name, visit.visit_id, extra // 60)
            self.device.extend_visit(visit.visit_id, extra)
            visit.action, visit.at = "end", now + extra * self._rng.uniform(0.3, 0.9)
        else:
            self._end_visit(visit, now, pin=None)

    def _start_visit(self, now: float) -> None:
        low, high = self._b.visit_duration_s
        duration = self._rng.randint(low, high)
        note = self._rng.choice(VISIT_NOTES)
        visit_id = self.device.start_visit(duration_s=duration, note=note)
        self._walker.hold(True)  # indoors for the visit
        plan = self._rng.random()
        if plan < 0.6:
            self._visit = _Visit(visit_id, "end", now + duration * self._rng.uniform(0.3, 0.9))
        elif plan < 0.75:
            self._visit = _Visit(visit_id, "extend", now + duration * self._rng.uniform(0.6, 0.9))
        else:
            # Runs to time: visit_due makes the worker check in; ending is a fallback if the
            # service never says so.
            self._visit = _Visit(visit_id, "end", now + duration + 900)
        log.info("%s started visit %s (%s, %d min)", self.name, visit_id, note, duration // 60)

    def _end_visit(self, visit: _Visit, now: float, pin: str | None) -> None:
        visit.ending, visit.at = True, now + 60.0
        self._walker.hold(False)
        log.info("%s ends visit %s", self.name, visit.visit_id)
        self.device.end_visit(visit.visit_id, pin=pin)

    # --- commands ---------------------------------------------------------------------------

    def _on_command(self, command: Command, now: float) -> None:
        p = command.payload
        alert, visit = self._alert, self._visit
        if command.type in (ALERT_CANCELLED, ALERT_CLOSED):
            if alert is not None and p.get("alert_id") == alert.alert_id:
                self._alert = None
        elif command.type == CANCEL_REJECTED:
            log.warning("%s: cancel of alert %s rejected", self.name, p.get("alert_id"))
        elif command.type == VISIT_DUE and visit is not None and self._is_current(p, visit):
            log.info("%s checks in on visit %s (time is up)", self.name, visit.visit_id)
            self.device.checkin_visit(visit.visit_id)
            visit.action, visit.at, visit.ending = "end", now + self._rng.uniform(60, 300), False
        elif (
            command.type == VISIT_END_REJECTED and visit is not None and self._is_current(p, visit)
        ):
            log.info("%s ends visit %s again, with the PIN", self.name, visit.visit_id)
            self._end_visit(visit, now, pin=self.device.cancel_pin)
        elif command.type == VISIT_ENDED and visit is not None and self._is_current(p, visit):
            self._visit = None

    @staticmethod
    def _is_current(payload: dict[str, object], visit: _Visit) -> bool:
        # PROTOCOL.md does not name the visit field of visit commands; accept either spelling
        # and treat a command without one as about the visit in progress.
        named = payload.get("visit_id", payload.get("id"))
        return named is None or named == visit.visit_id

    # --- helpers ----------------------------------------------------------------------------

    def _sync_device(self) -> None:
        self.device.position = self._walker.position
        self.device.battery = self._battery.percent
        self.device.charging = self._battery.charging

    def _send_location(self) -> None:
        indoors = not self._walker.moving and self._visit is not None
        if indoors:
            src, acc = ("wifi" if self.kind == "phone" else "gps"), self._rng.uniform(15, 40)
        else:
            src, acc = "gps", self._rng.uniform(3, 12)
        speed = self._walker.speed
        hdg = self._walker.heading if speed > 0 else None
        self.device.send_location(acc=acc, spd=speed, hdg=hdg, src=src)

    def _happens(self, rate_per_hour: float, dt: float) -> bool:
        # A Poisson process: the chance of at least one event in dt.
        return self._rng.random() < 1.0 - math.exp(-rate_per_hour * dt / 3600.0)

    def _jitter(self, interval: float) -> float:
        return interval * self._rng.uniform(0.9, 1.1)
