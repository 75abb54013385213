"""Tables and API schemas for organisations, teams and workers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Some organisations want a visit ended only with the worker's PIN, so a stolen phone
    # cannot quietly stop the amber timer.
    require_visit_end_pin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), default="")
    responder_notes: Mapped[str] = mapped_column(Text, default="")
    # PINs are short, so only slow (argon2) hashes of them are kept.
    cancel_pin_hash: Mapped[str] = mapped_column(String(200))
    duress_pin_hash: Mapped[str] = mapped_column(String(200))
    low_battery: Mapped[bool] = mapped_column(default=False)
    low_battery_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    team_id: int | None
    team: str | None = None
    name: str
    phone: str
    responder_notes: str
    low_battery: bool
    low_battery_since: datetime | None


class WorkerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str = Field("", max_length=32)
    team: str | None = Field(None, max_length=200)
    responder_notes: str = Field("", max_length=4000)
    cancel_pin: str = Field(pattern=r"^[0-9]{4,8}$")
    duress_pin: str = Field(pattern=r"^[0-9]{4,8}$")
