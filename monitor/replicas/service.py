"""Heartbeats of replicas, and the claim on one that has stopped beating (PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from monitor.replicas.models import Replica


def beat(db: Session, node: str, client_ids: list[str]) -> None:
    row = insert(Replica).values(node=node, beat_at=func.now(), client_ids=client_ids)
    db.execute(
        row.on_conflict_do_update(
            index_elements=[Replica.node],
            set_={"beat_at": row.excluded.beat_at, "client_ids": row.excluded.client_ids},
        )
    )


def claim_silent(
    db: Session, node: str, silent_s: float, *, skip: frozenset[str] = frozenset()
) -> Replica | None:
    """Another replica that has not beaten for `silent_s`, locked until the transaction ends
    (so one replica takes it over; if that one dies, the lock goes with its connection).
    None when there is no such replica, or each is claimed already."""
    return db.scalars(
        select(Replica)
        .where(
            Replica.node != node,
            Replica.node.not_in(skip),
            Replica.beat_at < func.now() - timedelta(seconds=silent_s),
        )
        .order_by(Replica.beat_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()


def forget(db: Session, node: str) -> None:
    db.execute(delete(Replica).where(Replica.node == node))
