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


class VapidKey(Base):
    """The installation's VAPID key pair (one row, made on first use): every phone's push
    subscription is bound to its public key, so every replica signs with this one."""

    __tablename__ = "app_vapid_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The P-256 private scalar and the uncompressed public point, base64url.
    private_key: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PushSubscription(Base):
    """A worker app's Web Push subscription: one per device, replaced when the app subscribes
    again, deleted when the push service says it is gone or the device is disabled."""

    __tablename__ = "app_push_subscriptions"

    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    endpoint: Mapped[str] = mapped_column(String(2048))
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(32))
    # Whose credentials made it (worker_app.push_sender.credentials_of).
    credentials: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
