"""The table of refused device messages, and its API schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, Text
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


class RefusedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    topic: str
    device_id: str | None
    reason: str
    excerpt: str
    size_bytes: int
