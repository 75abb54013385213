"""Tables and API schemas for devices, location fixes, battery warnings and device commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="badge")
    # Mosquitto's own PBKDF2-SHA512 format, so the broker's password file can be written
    # from the registry without ever holding the secret.
    secret_hash: Mapped[str] = mapped_column(String(200))
    heartbeat_interval_s: Mapped[int] = mapped_column(default=300)
    enabled: Mapped[bool] = mapped_column(default=True)
    online: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[datetime | None]
    # When the device counts as offline unless it is heard from again; indexed so the
    # scheduler finds the silent ones without scanning the fleet.
    offline_due_at: Mapped[datetime | None] = mapped_column(index=True)
    battery: Mapped[int | None]
    charging: Mapped[bool | None]
    rssi: Mapped[int | None]
    firmware: Mapped[str | None] = mapped_column(String(64))
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_acc: Mapped[float | None] = mapped_column(Float)
    last_fix_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LocationFix(Base):
    __tablename__ = "locations"
    __table_args__ = (Index("ix_locations_device_time", "device_id", "device_ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    worker_id: Mapped[int | None]
    device_ts: Mapped[datetime]
    received_at: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    alt: Mapped[float | None] = mapped_column(Float)
    spd: Mapped[float | None] = mapped_column(Float)
    hdg: Mapped[float | None] = mapped_column(Float)
    src: Mapped[str | None] = mapped_column(String(8))
    floor: Mapped[int | None]
    batt: Mapped[int | None]


class BatteryWarning(Base):
    """A worker's device went below the low-battery threshold (a warning, not an alert)."""

    __tablename__ = "battery_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int | None] = mapped_column(index=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    at: Mapped[datetime]
    level: Mapped[int]


class DeviceCommand(Base):
    """The outbox of commands to devices: written with the change that causes them and
    published again until the broker has taken them, so a crash cannot lose one."""

    __tablename__ = "device_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)


class CredentialsVersion(Base):
    """One row, its `version` bumped in the transaction of every change to device credentials
    (added, enabled, disabled, a new secret): each replica's scheduler compares it with the
    version it last wrote into the broker's password file, whichever process made the change."""

    __tablename__ = "device_credentials_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    worker_id: int | None
    kind: str
    heartbeat_interval_s: int
    enabled: bool
    online: bool
    last_seen_at: datetime | None
    battery: int | None
    charging: bool | None
    rssi: int | None
    firmware: str | None
    last_lat: float | None
    last_lon: float | None
    last_acc: float | None
    last_fix_at: datetime | None
    worker_name: str | None = None
    visit_note: str | None = None
    visit_due_at: datetime | None = None
