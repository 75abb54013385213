"""Service configuration, read from `VIGIL_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Vigil reads; docs/configuration.md documents each one."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    data_dir: Path = Field(
        Path("vigil-data"),
        description="Where the SQLite store, evidence and generated broker files live.",
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    log_level: Literal["", "DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "",
        description="What is logged (DEBUG, INFO, WARNING, ERROR). Empty: INFO for `vigil "
        "serve`, `vigil demo` and `vigil sim`, WARNING for the other commands, which then "
        "say only what they did (a migration on the way is not news).",
    )

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
    replica_silent_s: float = Field(
        5.0,
        ge=1,
        description="With a shared group on PostgreSQL: a replica that has not written its "
        "heartbeat for this long is taken for dead, and a live one takes over its MQTT "
        "sessions. Replicas beat five times as often.",
    )
    mqtt_tls_ca: str = ""
    # Where devices reach the broker: the worker app's relay (worker_app/relay.py) connects
    # there on each app's behalf, so the broker checks the app as it checks any device.
    mqtt_device_host: str = Field(
        "127.0.0.1",
        description="The broker's listener for devices (not the service's own): its host.",
    )
    mqtt_device_port: int = Field(1883, description="The broker's listener for devices: its port.")
    mqtt_device_tls_ca: str = Field(
        "",
        description="A CA certificate file: when set, the relay connects to the devices' "
        "listener over TLS and checks the broker's certificate against it.",
    )
    app_mqtt_url: str = Field(
        "",
        description="The MQTT-over-WebSocket URL the worker app connects to. Empty: the relay "
        "at this service's own origin (/mqtt); else a broker's own WebSocket listener "
        "(wss://...).",
    )
    relay_max_connections: int = Field(
        2000,
        ge=0,
        description="Worker apps relayed to the broker at once, by this replica; more are "
        "refused (HTTP 503). 0 turns the relay off.",
    )
    relay_max_per_address: int = Field(
        100,
        ge=1,
        description="Relayed connections from one client address at once; more are refused.",
    )
    relay_login_s: float = Field(
        20.0,
        gt=0,
        description="A relayed connection the broker has not answered (CONNACK) within this "
        "long is closed: connections that never log in cannot fill the relay.",
    )
    # Enrolling the worker app (worker_app/enrolment.py).
    enrol_minutes: int = Field(
        15, ge=1, le=7 * 24 * 60, description="How long an enrolment link can be used, minutes."
    )
    centre_phone: str = Field(
        "",
        description="The monitoring centre's phone number, which the worker app offers to call "
        "or text when a panic cannot reach the service.",
    )
    # Keeping the broker's password file in step with the registry (monitor/broker_sync.py).
    broker_dir: Path | None = Field(
        None,
        description="The broker's generated files (`vigil mosquitto-config --out`): when set, "
        "the service rewrites the devices' password file there as soon as device credentials "
        "change, and makes the broker load it. Unset: off.",
    )
    broker_pid_file: Path | None = Field(
        None,
        description="With broker_dir: the broker's pid file; the service sends that process "
        "SIGHUP after rewriting the file.",
    )
    broker_reload_command: str = Field(
        "",
        description="With broker_dir, instead of a pid file: a command that makes the broker "
        "re-read its files (e.g. `systemctl reload mosquitto`), run without a shell.",
    )

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    trusted_proxies: str = Field(
        "",
        description="The reverse proxies in front of the service, by address or network "
        "(e.g. 127.0.0.1,10.0.0.0/8), comma-separated: only from these are X-Forwarded-For "
        "and X-Forwarded-Proto believed. Empty (the default): from nobody; the address a "
        "connection comes from is the client's.",
    )

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
    signin_max_failures: int = Field(
        5, ge=1, description="Wrong passwords for one name before it must wait (per replica)."
    )
    signin_window_s: float = Field(
        300.0, gt=0, description="The window failed sign-ins are counted over, and the wait."
    )

    low_battery_pct: int = Field(15, ge=1, le=100)
    # Privacy (docs/privacy.md).
    location_retention_days: float = Field(
        7,
        ge=0,
        description="Location history outside alerts and visits is deleted after this many "
        "days; 0 keeps it for ever.",
    )
    location_purge_every_s: float = Field(
        3600, gt=0, description="How often the scheduler deletes expired location history."
    )
    # Places and cautions (docs/privacy.md, Cautions).
    place_match_m: float = Field(
        75,
        ge=0,
        le=5000,
        description="A visit or alert with no place chosen is at the nearest place of its "
        "organisation within this many metres of its position; 0 matches by choice only.",
    )
    caution_keep_days: int = Field(
        30,
        ge=0,
        le=3650,
        description="Expired cautions, hidden at once, are deleted this many days after "
        "their expiry date.",
    )
    supervisor_positions: Literal["always", "active"] = Field(
        "always",
        description="Supervisors and admins see positions `always`, or, like operators, only "
        "while the worker has an active alert or an open visit (`active`).",
    )
    default_heartbeat_s: int = Field(300, ge=10)
    visit_grace_s: int = Field(120, ge=0)
    max_payload_bytes: int = 16 * 1024
    max_evidence_bytes: int = 64 * 1024 * 1024
    evidence_store: Literal["local", "s3"] = Field(
        "local",
        description="Where uploaded evidence is kept: `local` (data_dir/evidence) or `s3` "
        "(S3-compatible object storage; credentials from boto3's usual chain).",
    )
    evidence_s3_bucket: str = Field("", description="The bucket, for evidence_store s3.")
    evidence_s3_endpoint_url: str = Field(
        "", description="The object store's URL; empty means AWS S3 itself."
    )
    evidence_s3_region: str = Field("", description="Its region; empty: boto3's own setting.")
    evidence_s3_prefix: str = Field(
        "", description="Put before every object key, e.g. vigil/evidence/."
    )
    evidence_retention_days: int = Field(
        90,
        ge=1,
        description="Clips are deleted by `vigil evidence purge` this long after their "
        "incident closed (never while it is on hold).",
    )

    telemetry_batch_max: int | None = Field(
        None,
        ge=1,
        description="Location/heartbeat rows per transaction at most; unset, 500 on "
        "PostgreSQL and 100 on SQLite (see `telemetry_batch_limit`).",
    )
    telemetry_batch_wait_ms: int = Field(50, ge=1, description="How long a batch waits to fill.")
    ingest_processes: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Processes, beside the service's own, that store location and heartbeat "
        "traffic through a shared subscription (PostgreSQL only). 0 stores it in the "
        "service's process. Unset: one on PostgreSQL when the machine has two cores or more, "
        "none otherwise (see `telemetry_processes`).",
    )
    urgent_per_device: int = Field(
        100,
        ge=1,
        description="Alert, cancel, visit and evidence messages of one device that may wait "
        "to be stored; more are refused as `overloaded` (the device is told, and resends).",
    )
    waiting_per_device: int = Field(
        20,
        ge=1,
        description="Cancel and visit messages of one device that may wait for the alert or "
        "visit they are about; more are refused.",
    )
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

    # The safety lead's reports (monitor/incidents).
    ack_targets: str = Field(
        "10:80,40:98.5",
        description="Targets for taking charge of alerts: SECONDS:PERCENT pairs separated by "
        "commas; 10:80,40:98.5 means 80 % within 10 s and 98.5 % within 40 s.",
    )
    test_alert_days: int = Field(
        30, ge=1, le=3650, description="A device with no test alert for this long is listed."
    )
    # The console's alarm (console/meta.py tells the browser).
    alarm_repeat_s: float = Field(
        10.0,
        ge=2,
        le=300,
        description="The console's alarm sounds again this often, seconds, while any alert "
        "(not a test) is waiting for someone to take charge.",
    )
    test_alert_close_min: float = Field(
        10.0,
        ge=0,
        le=7 * 24 * 60,
        description="A test alert nobody has taken charge of is resolved by the service "
        "(outcome test) this many minutes after it was raised; 0: never.",
    )
    pdf_font_dir: Path = Field(
        Path("/usr/share/fonts/truetype/dejavu"),
        description="Where DejaVu Sans is (Debian's fonts-dejavu-core), for PDF reports.",
    )

    # Escalation (the `escalation` package reads these; monitor itself does not).
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The address people and Twilio reach this service at: links in SMS, and "
        "the URL Twilio's webhook signatures are computed over.",
    )
    twilio_account_sid: str = Field("", description="Empty: notifications go to the outbox.")
    twilio_auth_token: str = ""
    twilio_from_number: str = Field("", description="The Twilio number SMS and calls come from.")
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="Twilio's REST API (a proxy or a test double)."
    )
    twilio_timeout_s: float = Field(10.0, gt=0, description="One request to Twilio at most.")
    call_recording: bool = Field(
        False,
        description="Record calls operators place from the console (both sides, from when "
        "the other person answers) and keep each recording as the alert's evidence.",
    )
    # The worker line: workers texting or calling the Vigil number (the `gateways` package).
    line_wait_s: float = Field(
        10.0,
        gt=0,
        le=14,
        description="How long a text or call to the Vigil number waits for its alert to be "
        "stored before Twilio is answered 503 (Twilio gives up after 15 s).",
    )
    line_recording_max_s: int = Field(
        3600,
        ge=60,
        le=14400,
        description="A call to the Vigil number is recorded this long at most.",
    )
    webhook_secret: str = Field(
        "", description="HMAC-SHA256 key for outgoing webhooks; empty keeps one in data_dir."
    )
    webhook_timeout_s: float = Field(10.0, gt=0)
    escalation_tick_s: float = Field(1.0, gt=0, description="How often due steps are looked for.")
    escalation_senders: int = Field(
        16, ge=1, le=256, description="Notifications sent at once (threads)."
    )
    escalation_attempts: int = Field(
        5, ge=1, le=20, description="Tries per notification when Twilio or a webhook errs."
    )
    escalation_retry_base_s: float = Field(
        2.0, gt=0, description="First retry delay; each retry waits twice as long (max 60 s)."
    )
    escalation_default_policy: bool = Field(
        False,
        description="Load the default policy shipped with Vigil when no policy is stored "
        "(the demo does).",
    )

    # Web Push to the worker app (the `worker_app` package reads these; monitor does not).
    push_enabled: bool = Field(
        True, description="Send visit reminders and 'help is on the way' as Web Push."
    )
    push_subject: str = Field(
        "",
        description="The VAPID subject push services may contact the operator at: a mailto: "
        "address or an https: URL. Empty: VIGIL_PUBLIC_URL if it is https, else a "
        "placeholder some push services (Apple's) refuse.",
    )
    push_services: str = Field(
        "fcm.googleapis.com,*.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com",
        description="Hosts a push subscription's endpoint may name (comma-separated; *. "
        "allows any subdomain): the service sends requests only there.",
    )
    push_tls_ca: str = Field(
        "", description="A CA certificate file for push services (a private one; the tests)."
    )
    push_timeout_s: float = Field(10.0, gt=0, description="One request to a push service at most.")

    # Traccar Client and OsmAnd-protocol trackers (the `gateways` package reads these).
    osmand_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="A port of its own for trackers (Traccar's is 5055), on VIGIL_HTTP_HOST, "
        "serving only the tracker route (at / and /osmand); 0: only /osmand on the main port.",
    )
    # Generous: Traccar Client sends what it buffered without signal in order, one request
    # each, and the rate is how long the latest position takes to arrive.
    osmand_rate_per_s: float = Field(
        10.0, gt=0, description="Requests per second one tracker may send, sustained."
    )
    osmand_burst: int = Field(
        300, ge=1, description="Requests one tracker may send at once (a backlog after a gap)."
    )
    osmand_wait_s: float = Field(
        10.0, gt=0, description="How long a request waits to be stored before it is answered 503."
    )
    # OwnTracks (the `gateways` package): its HTTP mode is always served at /owntracks/pub.
    owntracks_mqtt: bool = Field(
        False,
        description="Take OwnTracks apps' messages from the broker (owntracks/<id>/<id>): one "
        "more persistent MQTT session for each replica, vigil-<node>-owntracks.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("push_subject")
    @classmethod
    def _mailto_or_https(cls, value: str) -> str:
        if value and not re.fullmatch(r"mailto:[^@\s]+@[^@\s]+|https://[^\s/]+[^\s]*", value):
            raise ValueError(f"{value!r} is not a mailto: address or an https:// URL")
        return value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.evidence_store == "s3" and not self.evidence_s3_bucket:
            raise ValueError("VIGIL_EVIDENCE_S3_BUCKET must be set when VIGIL_EVIDENCE_STORE is s3")
        # SQLite has one writer and no way to tell the service's process what another stored.
        if self.ingest_processes and not self.uses_postgresql:
            raise ValueError("VIGIL_INGEST_PROCESSES needs PostgreSQL (VIGIL_DATABASE_URL)")
        return self

    @field_validator("broker_dir", "broker_pid_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # VIGIL_BROKER_DIR= (set, empty) means off, not the current directory.
        return None if value == "" else value

    @field_validator("app_mqtt_url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if value and not value.startswith(("ws://", "wss://")):
            raise ValueError(f"{value!r} is not a WebSocket URL (ws://... or wss://...)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{part.strip()!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                    ) from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @field_validator("ack_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        parse_targets(value)
        return value

    @cached_property
    def ack_target_list(self) -> list[tuple[float, float]]:
        """(seconds, percent) pairs, shortest first."""
        return parse_targets(self.ack_targets)

    @property
    def telemetry_batch_limit(self) -> int:
        """Rows per telemetry transaction. SQLite has one writer: an alert waits for the batch
        being written, so its batches are kept short (under a burst of locations a batch of
        500 took up to 340 ms, one of 100 80 to 110 ms at p99)."""
        if self.telemetry_batch_max is not None:
            return self.telemetry_batch_max
        return 500 if self.uses_postgresql else 100

    @property
    def telemetry_processes(self) -> int:
        """Telemetry processes to run. By default one wherever it helps: on PostgreSQL with a
        second core, alerts then no longer share the interpreter with location traffic (the
        p99 to `alert_received` in bench.alert_latency: 36 ms against 53 ms). SQLite has one
        writer and keeps telemetry in the service's process."""
        if self.ingest_processes is not None:
            return self.ingest_processes
        return 1 if self.uses_postgresql and (os.cpu_count() or 1) >= 2 else 0

    @property
    def uses_postgresql(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'vigil.db'}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"


def parse_targets(text: str) -> list[tuple[float, float]]:
    """'10:80,40:98.5' as [(10.0, 80.0), (40.0, 98.5)]; a ValueError names what is wrong."""
    targets = []
    for part in text.split(","):
        seconds, sep, percent = part.strip().partition(":")
        try:
            pair = (float(seconds), float(percent))
        except ValueError:
            pair = None
        if not sep or pair is None or not (0 < pair[0] < 86400 and 0 < pair[1] <= 100):
            raise ValueError(
                f"{part.strip()!r} is not SECONDS:PERCENT (seconds above 0 and below a day, "
                "percent above 0 and at most 100)"
            )
        targets.append(pair)
    return sorted(targets)
