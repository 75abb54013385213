"""Tables and API schemas for timed visits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class VisitState(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("device_id", "device_visit_id", name="uq_visits_device_visit"),
        Index("ix_visits_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    device_visit_id: Mapped[str] = mapped_column(String(128))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    state: Mapped[str] = mapped_column(String(16), default=VisitState.OPEN.value)
    note: Mapped[str | None] = mapped_column(Text)
    memo: Mapped[str | None] = mapped_column(String(128))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_s: Mapped[int]
    due_at: Mapped[datetime]
    # Set when visit_due went out / the overdue alert was raised; the scheduler claims each
    # by a conditional update on these, so it happens once even with several replicas.
    due_notified_at: Mapped[datetime | None]
    overdue_alert_id: Mapped[int | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The place visited: the one the worker chose from the list, or failing that the nearest
    # within the set distance of where the visit started (`place_match` says which).
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    place_match: Mapped[str | None] = mapped_column(String(16))


class VisitEvent(Base):
    """One entry of a visit's timeline (its start, deadlines and end; places the worker's
    phone reported arriving at or leaving). Entries are only ever added."""

    __tablename__ = "visit_events"
    # A resent report (an OwnTracks transition comes again until the broker or the app is
    # answered) names the same `key`, so it cannot make a second entry, even from two
    # replicas at once. Entries without a key (NULL) are never the same.
    __table_args__ = (UniqueConstraint("visit_id", "key", name="uq_visit_events_visit_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key: Mapped[str | None] = mapped_column(String(128))


class VisitEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    actor: str
    text: str
    data: dict[str, Any]


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    device_visit_id: str
    worker_id: int | None
    state: VisitState
    note: str | None
    memo: str | None
    lat: float | None
    lon: float | None
    started_at: datetime
    duration_s: int
    due_at: datetime
    due_notified_at: datetime | None
    overdue_alert_id: int | None
    ended_at: datetime | None
    end_reason: str | None
