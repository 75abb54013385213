"""PINs the worker chooses: an administrator issues a one-time link (shown once, with its QR
code), the worker opens it on their phone and types both PINs twice. Nobody else ever knows
them; only the link's sha256 and the PINs' argon2 hashes are stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.db import utcnow
from monitor.orgs.errors import LinkGone, NotFound
from monitor.orgs.models import Worker, WorkerPinLink
from monitor.orgs.schemas import PinLinkUse
from monitor.orgs.scope import Scope
from monitor.orgs.service import visible_worker
from monitor.orgs.workers import store_pins

# 256 random bits: nobody finds a live link by guessing, so the page needs no throttle, and
# an unsalted sha256 keeps a stolen table from giving links back.
TOKEN_BYTES = 32
PAGE = "/pins"
# Long enough for a worker to open it at the start of their next shift.
HOURS = 72


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link(public_url: str, token: str) -> str:
    # In the fragment: a browser never sends it, so no server's or proxy's log holds it.
    return f"{public_url.rstrip('/')}{PAGE}#t={token}"


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime
    worker_id: int


def issue(
    db: Session, worker_id: int, *, scope: Scope, actor: str, address: str = "", hours: int = HOURS
) -> Issued:
    """A new link for the worker; any earlier one not yet used stops working."""
    worker = visible_worker(db, worker_id, scope)
    replaced: int = db.execute(  # type: ignore[attr-defined]
        delete(WorkerPinLink).where(
            WorkerPinLink.worker_id == worker.id, WorkerPinLink.used_at.is_(None)
        )
    ).rowcount
    token, now = secrets.token_urlsafe(TOKEN_BYTES), utcnow()
    expires_at = now + timedelta(hours=hours)
    db.add(
        WorkerPinLink(
            token_hash=token_hash(token),
            worker_id=worker.id,
            issued_by=actor,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    audit(
        db,
        actor,
        "pin_link_issued",
        f"worker {worker.id}",
        address=address,
        expires_at=expires_at.isoformat(),
        replaced=replaced,
    )
    return Issued(token, expires_at, worker.id)


def _live(db: Session, token: str) -> tuple[WorkerPinLink, Worker]:
    row = db.scalar(select(WorkerPinLink).where(WorkerPinLink.token_hash == token_hash(token)))
    if row is None:
        raise NotFound("this link is not known: ask for a new one")
    if row.used_at is not None:
        raise LinkGone("this link has been used already: ask for a new one")
    if row.expires_at <= utcnow():
        raise LinkGone("this link has expired: ask for a new one")
    worker = db.get(Worker, row.worker_id)
    assert worker is not None  # a foreign key
    return row, worker


def about(db: Session, token: str) -> tuple[str, datetime]:
    """Whose link it is and until when, for the page to say before the PINs are typed."""
    row, worker = _live(db, token)
    return worker.name, row.expires_at


def use(db: Session, choice: PinLinkUse, *, address: str = "") -> Worker:
    """The worker's PINs, once: a second use, even at the same moment, is refused."""
    row, worker = _live(db, choice.token)
    taken: int = db.execute(  # type: ignore[attr-defined]
        update(WorkerPinLink)
        .where(WorkerPinLink.id == row.id, WorkerPinLink.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if taken != 1:
        raise LinkGone("this link has been used already: ask for a new one")
    store_pins(worker, choice)
    audit(
        db,
        f"worker:{worker.id}",
        "worker_pins_set",
        f"worker {worker.id}",
        address=address,
        by="worker",
        link_issued_by=row.issued_by,
    )
    return worker
