"""Tables and API schemas for evidence references and their chain of custody."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


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
    # The object's key in the evidence store (a path under the local directory, or after
    # the S3 prefix).
    stored_path: Mapped[str | None] = mapped_column(Text)
    # When retention deleted the bytes; the row, and its sha256, stay as the record.
    purged_at: Mapped[datetime | None]


class EvidenceCustody(Base):
    """One entry of a clip's chain of custody: who did what with its bytes, and when.
    Entries are only ever added."""

    __tablename__ = "evidence_custody"

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_pk: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    # uploaded, played, verified, verify_failed, purged
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


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
    purged_at: datetime | None


class CustodyEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


class CustodyOut(BaseModel):
    evidence: EvidenceOut
    entries: list[CustodyEntryOut]
