"""The worker app's tables: one-time enrolment codes (kept only as hashes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class AppEnrolment(Base):
    """An enrolment code issued for a phone-app device: redeemed once, before it expires, for
    the device's credentials. Only the code's sha256 is kept (docs/security.md)."""

    __tablename__ = "app_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"), index=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), index=True)
    # "cli" or "user:<name>", as in the audit log.
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]
    redeemed_from: Mapped[str | None] = mapped_column(String(64))
