"""Tables and API schemas for alerts and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.db import Base, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    # The idempotency key of ingest: however many copies a device sends, one row.
    __table_args__ = (
        UniqueConstraint("device_id", "device_alert_id", name="uq_alerts_device_alert"),
        Index("ix_alerts_state_priority", "state", "priority", "raised_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    # The device's own id; empty for alerts the service raises itself (overdue, offline).
    device_alert_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str | None] = mapped_column(String(16))
    duress: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default=AlertState.RAISED.value)
    note: Mapped[str | None] = mapped_column(Text)
    device_ts: Mapped[datetime | None]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    acc: Mapped[float | None]
    loc: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    battery: Mapped[int | None]
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(32))
    cancelled_at: Mapped[datetime | None]
    # On hold (under investigation): its evidence is kept whatever the retention period.
    hold: Mapped[bool] = mapped_column(default=False, server_default=false())
    hold_reason: Mapped[str | None] = mapped_column(Text)
    held_at: Mapped[datetime | None]
    held_by: Mapped[str | None] = mapped_column(String(200))

    @property
    def state_enum(self) -> AlertState:
        return AlertState(self.state)

    @property
    def type_enum(self) -> AlertType:
        return AlertType(self.type)


class AlertEvent(Base):
    """One entry of an alert's timeline; entries are only ever added, never changed, and
    each carries the hash of the one before it (monitor/alerts/chain.py)."""

    __tablename__ = "alert_events"
    __table_args__ = (UniqueConstraint("alert_id", "seq", name="uq_alert_events_alert_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    # The entry's place in its incident's chain, from 1.
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    seq: int
    at: datetime
    kind: str
    actor: str
    text: str
    data: dict[str, Any]
    hash: str


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int | None
    worker_id: int | None
    worker_name: str | None = None
    team_id: int | None = None
    team: str | None = None
    device_id: str
    device_alert_id: str | None
    type: AlertType
    trigger: str | None
    duress: bool
    priority: int
    state: AlertState
    note: str | None
    device_ts: datetime | None
    raised_at: datetime
    lat: float | None
    lon: float | None
    acc: float | None
    battery: int | None
    visit_id: int | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: Outcome | None
    cancelled_at: datetime | None
    hold: bool
    hold_reason: str | None
    held_at: datetime | None
    held_by: str | None


class TrailPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_ts: datetime
    lat: float
    lon: float
    acc: float | None


# PostgreSQL text cannot hold a NUL character: refuse it with the field's name.
NO_NUL = r"^[^\x00]*$"


class AuthoritiesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    reference: str = Field("", max_length=200, pattern=NO_NUL)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000, pattern=NO_NUL)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # An hour at most: a silence is a breather while someone acts, not a way to mute an alert.
    minutes: int = Field(ge=1, le=60)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: str | None = Field(None, max_length=4000, pattern=NO_NUL)
    # Resolving an alert another person has taken charge of is refused unless this says so.
    take_over: bool = False


class HoldIn(BaseModel):
    # A reason of spaces only is no reason.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=1000, pattern=NO_NUL)
