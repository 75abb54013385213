"""The safety lead's figures: alerts per week, false alarms, response times against targets,
devices not tested lately, and low-battery warnings. docs/review.md defines each one."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.devices.models import BatteryWarning, Device
from monitor.incidents.models import (
    Acknowledgement,
    BatteryRank,
    Durations,
    FalseAlarms,
    Report,
    StaleDevice,
    StaleTests,
    TargetResult,
    WeekCount,
)
from monitor.incidents.queries import IncidentFilter, answered_at, incident_query
from monitor.orgs.models import Team, Worker
from monitor.orgs.scope import Scope

FALSE_ALARMS = frozenset({Outcome.FALSE_ALARM.value, Outcome.ACCIDENTAL.value})
LOW_BATTERY_TOP = 10


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least p % of the values at or
    below it (ordered[ceil(p/100 * n) - 1]). Always one of the values, never interpolated."""
    if not ordered:
        return None
    rank = max(1, math.ceil(Fraction(str(p)) / 100 * len(ordered)))
    return ordered[rank - 1]


def durations(values: list[float]) -> Durations:
    ordered = sorted(values)
    return Durations(
        count=len(ordered),
        p50_s=percentile(ordered, 50),
        p90_s=percentile(ordered, 90),
        max_s=ordered[-1] if ordered else None,
    )


def iso_week(day: date) -> tuple[str, date]:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}", day - timedelta(days=day.weekday())


def per_week(found: list[Alert]) -> list[WeekCount]:
    """Every week from the first alert's to the last's, empty weeks included (charts)."""
    weeks: dict[date, WeekCount] = {}
    for alert in found:
        label, monday = iso_week(alert.raised_at.astimezone(UTC).date())
        row = weeks.get(monday)
        if row is None:
            row = weeks[monday] = WeekCount(
                week=label, starts=monday, total=0, duress=0, by_type={}
            )
        row.total += 1
        row.duress += alert.duress
        row.by_type[alert.type] = row.by_type.get(alert.type, 0) + 1
    if weeks:
        monday, last = min(weeks), max(weeks)
        while monday < last:
            monday += timedelta(days=7)
            if monday not in weeks:
                weeks[monday] = WeekCount(
                    week=iso_week(monday)[0], starts=monday, total=0, duress=0, by_type={}
                )
    return [weeks[k] for k in sorted(weeks)]


def acknowledgement(
    found: list[Alert], targets: list[tuple[float, float]], now: datetime
) -> Acknowledgement:
    """Time until someone took charge, over the alerts that were answered; each target's
    share over those plus every alert still waiting longer than the target. Alerts the
    worker cancelled before anyone took charge needed no answer and are left out."""
    taken: list[float] = []
    waiting: list[float] = []  # how long each unanswered alert has waited so far
    for alert in found:
        at = answered_at(alert)
        if at is not None:
            taken.append((at - alert.raised_at).total_seconds())
        elif alert.state == AlertState.RAISED.value:
            waiting.append((now - alert.raised_at).total_seconds())
    results = []
    for within_s, target_pct in targets:
        within = sum(1 for s in taken if s <= within_s)
        counted = len(taken) + sum(1 for s in waiting if s > within_s)
        share = Fraction(within * 100, counted) if counted else None
        results.append(
            TargetResult(
                within_s=within_s,
                target_pct=target_pct,
                counted=counted,
                within=within,
                share_pct=None if share is None else float(share),
                # Compared exactly: 98.5 % of 200 alerts is met by 197, not missed by rounding.
                met=None if share is None else share >= Fraction(str(target_pct)),
            )
        )
    summary = durations(taken)
    return Acknowledgement(**summary.model_dump(), waiting=len(waiting), targets=results)


def false_alarms(found: list[Alert]) -> FalseAlarms:
    resolved = [a for a in found if a.state == AlertState.RESOLVED.value]
    false = sum(1 for a in resolved if a.outcome in FALSE_ALARMS)
    return FalseAlarms(
        false_alarms=false, resolved=len(resolved), rate=false / len(resolved) if resolved else None
    )


def stale_test_devices(db: Session, scope: Scope, before: datetime, days: int) -> StaleTests:
    """Devices in service with no test alert in the `days` before `before`, never-tested
    first, then the longest untested."""
    last = (
        select(Alert.device_id, func.max(Alert.raised_at).label("at"))
        .where(Alert.type == AlertType.TEST.value, Alert.raised_at < before)
        .group_by(Alert.device_id)
        .subquery()
    )
    rows = db.execute(
        select(Device.id, Device.worker_id, Worker.name, last.c.at)
        .outerjoin(Worker, Worker.id == Device.worker_id)
        .outerjoin(last, last.c.device_id == Device.id)
        .where(
            Device.enabled.is_(True),
            scope.covers(Device.worker_id),
            (last.c.at.is_(None)) | (last.c.at < before - timedelta(days=days)),
        )
        .order_by(last.c.at.asc().nulls_first(), Device.id)
    )
    return StaleTests(
        days=days,
        before=before,
        devices=[
            StaleDevice(device_id=d, worker_id=w, worker_name=n, last_test_at=at)
            for d, w, n, at in rows
        ],
    )


def low_battery(
    db: Session, scope: Scope, since: datetime | None, until: datetime
) -> list[BatteryRank]:
    """The workers with the most low-battery warnings in the period, most first."""
    warned = func.count(BatteryWarning.id).label("n")
    q = (
        select(BatteryWarning.worker_id, warned, func.max(BatteryWarning.at))
        .where(
            BatteryWarning.worker_id.is_not(None),
            BatteryWarning.at < until,
            scope.covers(BatteryWarning.worker_id),
        )
        .group_by(BatteryWarning.worker_id)
        .order_by(warned.desc(), BatteryWarning.worker_id)
        .limit(LOW_BATTERY_TOP)
    )
    if since is not None:
        q = q.where(BatteryWarning.at >= since)
    counts = [(w, n, at) for w, n, at in db.execute(q) if w is not None]
    names: dict[int, tuple[str | None, str | None]] = {
        w: (name, team)
        for w, name, team in db.execute(
            select(Worker.id, Worker.name, Team.name)
            .outerjoin(Team, Team.id == Worker.team_id)
            .where(Worker.id.in_([c[0] for c in counts]))
        )
    }
    return [
        BatteryRank(
            worker_id=w,
            worker_name=names.get(w, (None, None))[0],
            team=names.get(w, (None, None))[1],
            warnings=n,
            last_at=at,
        )
        for w, n, at in counts
    ]


def build(
    db: Session,
    scope: Scope,
    *,
    since: datetime | None,
    until: datetime | None,
    targets: list[tuple[float, float]],
    test_days: int,
    now: datetime,
) -> Report:
    end = until or now
    found = list(db.scalars(incident_query(scope, IncidentFilter(since=since, until=end))))
    present = {a.type for a in found}
    return Report(
        since=since,
        until=end,
        alerts=len(found),
        types=[t.value for t in AlertType if t.value in present],
        weeks=per_week(found),
        false_alarms=false_alarms(found),
        acknowledge=acknowledgement(found, targets, now),
        resolve=durations(
            [
                (a.resolved_at - a.raised_at).total_seconds()
                for a in found
                if a.state == AlertState.RESOLVED.value and a.resolved_at is not None
            ]
        ),
        stale_test_devices=stale_test_devices(db, scope, end, test_days),
        low_battery=low_battery(db, scope, since, end),
    )
