"""API schemas for the incident list and the reports (they read the alerts' tables)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from monitor.alerts.models import AlertOut


class IncidentOut(AlertOut):
    # Seconds from raised_at until someone took charge (acknowledged, or resolved without
    # acknowledging first), and until it was resolved; null while that has not happened.
    time_to_acknowledge_s: float | None = None
    time_to_resolve_s: float | None = None


class WeekCount(BaseModel):
    week: str  # ISO 8601 week, e.g. "2025-W10"
    starts: date  # its Monday
    total: int
    duress: int
    by_type: dict[str, int]


class FalseAlarms(BaseModel):
    false_alarms: int  # resolved with outcome false_alarm or accidental
    resolved: int
    rate: float | None  # false_alarms / resolved; null when nothing was resolved


class TargetResult(BaseModel):
    within_s: float
    target_pct: float
    counted: int
    within: int
    share_pct: float | None
    met: bool | None  # null when no alert counts towards it


class Durations(BaseModel):
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None


class Acknowledgement(Durations):
    # Alerts nobody has taken charge of yet (still raised).
    waiting: int
    targets: list[TargetResult]


class StaleDevice(BaseModel):
    device_id: str
    worker_id: int | None
    worker_name: str | None
    last_test_at: datetime | None


class StaleTests(BaseModel):
    days: int
    before: datetime
    devices: list[StaleDevice]


class BatteryRank(BaseModel):
    worker_id: int
    worker_name: str | None
    team: str | None
    warnings: int
    last_at: datetime


class Report(BaseModel):
    since: datetime | None
    until: datetime
    alerts: int
    types: list[str]
    weeks: list[WeekCount]
    false_alarms: FalseAlarms
    acknowledge: Acknowledgement
    resolve: Durations
    stale_test_devices: StaleTests
    low_battery: list[BatteryRank]
