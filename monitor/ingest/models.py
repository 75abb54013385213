"""Tables of refused device messages (and their API schema) and of messages waiting for
what they are about."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base


class RefusedMessage(Base):
    __tablename__ = "refused_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    topic: Mapped[str] = mapped_column(String(300))
    # Not a foreign key: refusals from unknown devices are recorded too.
    device_id: Mapped[str | None] = mapped_column(String(300), index=True)
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int]
    # Copies of the same refusal (device, topic, reason) recorded as this one row: a device
    # refused in a loop is one row a second, with its count.
    repeats: Mapped[int] = mapped_column(default=1, server_default="1")


class RefusedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    topic: str
    device_id: str | None
    reason: str
    excerpt: str
    size_bytes: int
    repeats: int


class WaitingMessage(Base):
    """A cancel or visit message that came before the alert or visit it is about.

    Replicas sharing device traffic through a shared subscription can receive a device's
    messages out of order; such a message waits here and is applied when what it is about
    arrives, or refused after `VIGIL_WAITING_MAX_S`.
    """

    __tablename__ = "waiting_messages"
    __table_args__ = (Index("ix_waiting_messages_ref", "device_id", "suffix", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    suffix: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)
