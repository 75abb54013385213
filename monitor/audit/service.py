"""Writing to the audit log, in the caller's transaction or a short one of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from monitor.audit.models import AuditEntry
from monitor.db import Store, utcnow


def audit(
    db: Session, actor: str, action: str, target: str = "", *, address: str = "", **details: Any
) -> None:
    """Add an entry in the caller's transaction: it stands or falls with the change itself."""
    db.add(
        AuditEntry(
            at=utcnow(),
            actor=_storable(actor)[:200],
            action=action,
            target=_storable(target)[:300],
            address=_storable(address)[:64],
            details=details,
        )
    )


def _storable(text: str) -> str:
    # What was typed at sign-in is recorded as typed, but PostgreSQL text cannot hold NUL.
    return text.replace("\x00", "\\0")


def audit_now(
    store: Store, actor: str, action: str, target: str = "", *, address: str = "", **details: Any
) -> None:
    """Add an entry on its own, for what changes nothing else (a refused sign-in)."""
    with store.begin() as db:
        audit(db, actor, action, target, address=address, **details)
