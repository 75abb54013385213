"""A clip's chain of custody: its upload, every playback, every check and its deletion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.db import Store, utcnow
from monitor.evidence.models import CustodyEntryOut, Evidence, EvidenceCustody
from monitor.evidence.storage import EvidenceStore, MissingObject, sha256_of


def record(db: Session, ev: Evidence, actor: str, action: str, **details: Any) -> None:
    """Add an entry in the caller's transaction: it stands or falls with what it records."""
    db.add(
        EvidenceCustody(evidence_pk=ev.id, at=utcnow(), actor=actor, action=action, details=details)
    )


def entries(db: Session, evidence_pk: int) -> list[CustodyEntryOut]:
    rows = db.scalars(
        select(EvidenceCustody)
        .where(EvidenceCustody.evidence_pk == evidence_pk)
        .order_by(EvidenceCustody.id)
    )
    return [CustodyEntryOut.model_validate(r) for r in rows]


def label(ev: Evidence) -> str:
    """How a clip is named to people: the record's id, the device and the device's id."""
    return f"evidence {ev.id} ({ev.device_id} {ev.evidence_id})"


@dataclass
class Checked:
    evidence_pk: int
    label: str
    where: str
    # None when the stored bytes still hash to the recorded sha256.
    problem: str | None


BATCH = 200


def _stored(db: Session, after: int, evidence_pk: int | None) -> list[Evidence]:
    q = select(Evidence).where(
        Evidence.stored_path.is_not(None), Evidence.purged_at.is_(None), Evidence.id > after
    )
    if evidence_pk is not None:
        q = q.where(Evidence.id == evidence_pk)
    return list(db.scalars(q.order_by(Evidence.id).limit(BATCH)))


def verify(
    store: Store, evidence: EvidenceStore, *, evidence_pk: int | None = None, actor: str = "cli"
) -> Iterator[Checked]:
    """Read every stored clip (or one) back from the evidence store and hash it again; each
    result goes into the clip's custody as `verified` or `verify_failed`."""
    after = 0
    while True:
        with store.session() as db:
            batch = _stored(db, after, evidence_pk)
        if not batch:
            return
        for ev in batch:
            checked = _check(ev, evidence)
            # A short transaction per clip: hashing a large object must not hold the
            # database's write lock (SQLite has one for everything).
            with store.begin() as db:
                now = db.get(Evidence, ev.id)
                if now is None or now.purged_at is not None:
                    continue  # discarded or purged while it was being read
                details: dict[str, Any] = {"sha256": ev.uploaded_sha256, "where": checked.where}
                if checked.problem is None:
                    record(db, now, actor, "verified", **details)
                else:
                    record(db, now, actor, "verify_failed", problem=checked.problem, **details)
            yield checked
        after = batch[-1].id


def _check(ev: Evidence, evidence: EvidenceStore) -> Checked:
    assert ev.stored_path is not None
    where = evidence.describe(ev.stored_path)
    try:
        found = sha256_of(evidence.open(ev.stored_path))
    except MissingObject:
        return Checked(ev.id, label(ev), where, "the stored object is missing")
    except Exception as e:
        # Whatever failed (the store unreachable, a read cut short) is this clip's result;
        # the run goes on to the others.
        return Checked(ev.id, label(ev), where, f"could not be read: {type(e).__name__}: {e}")
    if found != ev.uploaded_sha256:
        problem = f"sha256 is {found}, but {ev.uploaded_sha256} was recorded at upload"
        return Checked(ev.id, label(ev), where, problem)
    return Checked(ev.id, label(ev), where, None)
