"""Service configuration, read from `VIGIL_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Vigil reads; docs/configuration.md documents each one."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    data_dir: Path = Field(
        Path("vigil-data"),
        description="Where the SQLite store, evidence and generated broker files live.",
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "vigil-service"
    mqtt_password: str = ""
    mqtt_node: str = Field(
        "main",
        description="This replica's name; part of its MQTT client "
        "ids, so it must be stable across restarts and unique per replica.",
    )
    mqtt_shared_group: str = Field(
        "",
        description="When set, subscribe through "
        "$share/<group>/... so replicas share device traffic.",
    )
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    mqtt_tls_ca: str = ""

    http_host: str = "127.0.0.1"
    http_port: int = 8000

    map_tiles_url: str = Field(
        "",
        description="Map tile URL template for the console, e.g. "
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty shows positions on a blank map "
        "(for machines with no network).",
    )
    map_attribution: str = Field("", description="Attribution shown with the map tiles.")

    secret_key: str = Field(
        "", description="Signs access tokens; generated into data_dir when empty."
    )
    token_ttl_s: int = 8 * 3600

    low_battery_pct: int = Field(15, ge=1, le=100)
    default_heartbeat_s: int = Field(300, ge=10)
    visit_grace_s: int = Field(120, ge=0)
    max_payload_bytes: int = 16 * 1024
    max_evidence_bytes: int = 64 * 1024 * 1024

    telemetry_batch_max: int = Field(
        500, ge=1, description="Location/heartbeat rows per transaction at most."
    )
    telemetry_batch_wait_ms: int = Field(50, ge=1, description="How long a batch waits to fill.")
    scheduler_tick_s: float = Field(0.5, gt=0)
    waiting_max_s: float = Field(
        60.0,
        gt=0,
        description="How long a cancel or visit message that came before its alert or visit "
        "waits for it before it is refused.",
    )
    command_resend_s: float = Field(
        15.0,
        gt=0,
        description="Commands the broker has not acknowledged after this long are published again.",
    )

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'vigil.db'}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"
