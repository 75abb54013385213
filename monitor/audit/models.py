"""The audit log's table and its API schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class AuditEntry(Base):
    """Who did (or tried) what, when, from where. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # "user:<name>", "cli" (someone at the server's shell), or the name tried at sign-in.
    actor: Mapped[str] = mapped_column(String(200))
    # e.g. sign_in, sign_in_failed, sign_in_throttled, permission_refused, policy_changed
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    details: dict[str, Any]
