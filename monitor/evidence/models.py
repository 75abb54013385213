"""Tables and API schemas for evidence references."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base


class Evidence(Base):
    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("device_id", "evidence_id", name="uq_evidence_device_evidence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    evidence_id: Mapped[str] = mapped_column(String(128))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    # The ids as the device gave them, kept even when the alert or visit is not yet known.
    device_alert_id: Mapped[str | None] = mapped_column(String(64))
    device_visit_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(Text)
    codec: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Set by the reference message; an upload that came first waits with its own digest.
    sha256: Mapped[str | None] = mapped_column(String(64))
    uri: Mapped[str | None] = mapped_column(Text)
    device_ts: Mapped[datetime | None]
    referenced_at: Mapped[datetime | None]
    uploaded_at: Mapped[datetime | None]
    uploaded_sha256: Mapped[str | None] = mapped_column(String(64))
    stored_path: Mapped[str | None] = mapped_column(Text)


class EvidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    evidence_id: str
    alert_id: int | None
    visit_id: int | None
    kind: str | None
    codec: str | None
    duration_ms: int | None
    size_bytes: int | None
    sha256: str | None
    uri: str | None
    referenced_at: datetime | None
    uploaded_at: datetime | None
