"""REST routes for the safety lead: the incident list and its CSV, one incident's PDF, reports."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import select

from monitor.alerts import service as alerts
from monitor.alerts.models import NO_NUL
from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.audit.service import audit_now
from monitor.db import MAX_ROW_ID, utcnow
from monitor.deps import (
    ReadSessionDep,
    RowId,
    ScopeDep,
    SettingsDep,
    StoreDep,
    Supervisor,
    as_utc,
    client_address,
)
from monitor.incidents import export, pdf, queries, reports
from monitor.incidents.models import IncidentOut, Report
from monitor.incidents.queries import IncidentFilter
from monitor.orgs.models import Organisation
from monitor.privacy import positions
from monitor.reads import alert_detail
from monitor.users.accounts import actor_of

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
reports_router = APIRouter(prefix="/api/v1/reports", tags=["incidents"])

# An export is made in memory: past this many rows, narrow the filters (a 422 says so).
MAX_EXPORT_ROWS = 100_000
Since = Annotated[datetime | None, Query(description="raised at or after (no offset: UTC)")]
Until = Annotated[datetime | None, Query(description="raised before (no offset: UTC)")]
Id = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]


def period(since: Since = None, until: Until = None) -> tuple[datetime | None, datetime | None]:
    start, end = as_utc(since, "since"), as_utc(until, "until")
    if start is not None and end is not None and start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since must be before until")
    return start, end


Period = Annotated[tuple[datetime | None, datetime | None], Depends(period)]


def incident_filter(
    window: Period,
    team: Id = None,
    worker: Id = None,
    type: AlertType | None = None,
    outcome: Outcome | None = None,
    state: AlertState | None = None,
    duress: bool | None = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL, description="text in the alert's or people's notes"),
    ] = None,
) -> IncidentFilter:
    return IncidentFilter(
        since=window[0],
        until=window[1],
        team_id=team,
        worker_id=worker,
        type=type,
        outcome=outcome,
        state=state,
        duress=duress,
        text=q or None,
    )


Filter = Annotated[IncidentFilter, Depends(incident_filter)]


@router.get("")
def list_incidents(
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> list[IncidentOut]:
    """Alerts matching every filter given, newest first, with their response times."""
    rows = queries.find(db, scope, f, limit=limit, offset=offset)
    return [positions.alert(r, scope.positions_always) for r in rows]


@router.get("/export.csv", response_class=Response)
def export_csv(
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    f: Filter,
    store: StoreDep,
    request: Request,
) -> Response:
    """The same filters as the list, every matching incident as one CSV row."""
    rows = queries.find(db, scope, f, limit=MAX_EXPORT_ROWS + 1)
    if len(rows) > MAX_EXPORT_ROWS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"more than {MAX_EXPORT_ROWS} incidents match: narrow the filters",
        )
    # Personal data leaving the service: who took it, and which.
    audit_now(
        store,
        actor_of(user),
        "incidents_exported",
        f"{len(rows)} incidents",
        address=client_address(request),
        filters={
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in dataclasses.asdict(f).items()
            if v is not None
        },
    )
    name = f"vigil-incidents-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    return Response(
        export.to_csv([positions.alert(r, scope.positions_always) for r in rows]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{alert_id}/report.pdf", response_class=Response)
def incident_pdf(
    alert_id: RowId,
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    settings: SettingsDep,
    store: StoreDep,
    request: Request,
) -> Response:
    """One incident as a PDF: facts, positions, evidence hashes, the hash-chained timeline."""
    alerts.check_in_scope(db, alert_id, scope)
    alert = alerts.get(db, alert_id)
    org = (
        db.scalar(select(Organisation.name).where(Organisation.id == alert.org_id))
        if alert.org_id is not None
        else None
    )
    detail = alert_detail.detail(db, alert)
    had = detail.lat is not None or bool(detail.trail)
    shown = positions.alert(detail, scope.positions_always)  # may take the positions out
    body = pdf.render(
        shown,
        positions_withheld=had and shown.lat is None and not shown.trail,
        org=org,
        ack_s=queries.seconds(alert.raised_at, queries.answered_at(alert)),
        resolve_s=queries.seconds(alert.raised_at, alert.resolved_at),
        exported_by=actor_of(user),
        now=utcnow(),
        font_dir=settings.pdf_font_dir,
    )
    audit_now(
        store,
        actor_of(user),
        "incident_exported",
        f"alert {alert_id}",
        address=client_address(request),
    )
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="vigil-incident-{alert_id}.pdf"'},
    )


@reports_router.get("")
def report(
    db: ReadSessionDep, user: Supervisor, scope: ScopeDep, settings: SettingsDep, window: Period
) -> Report:
    """Alerts per week, false alarms, response times against the targets, devices not
    tested lately, low-battery warnings: over alerts raised in the period."""
    return reports.build(
        db,
        scope,
        since=window[0],
        until=window[1],
        targets=settings.ack_target_list,
        test_days=settings.test_alert_days,
        now=utcnow(),
    )
