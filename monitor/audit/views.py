"""Reading the audit log (admins of the whole service only: it spans every organisation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from monitor.audit.models import AuditEntry, AuditEntryOut
from monitor.deps import ReadSessionDep, ServiceAdmin, as_utc

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def audit_log(
    db: ReadSessionDep,
    user: ServiceAdmin,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditEntryOut]:
    """Newest first."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if since:
        q = q.where(AuditEntry.at >= as_utc(since, "since"))
    return [AuditEntryOut.model_validate(e) for e in db.scalars(q)]
