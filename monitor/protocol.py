"""The device protocol v1 (PROTOCOL.md) as strict schemas, and the parser that applies them.

Parsing is one pass: size, topic, then pydantic's JSON validation in strict mode (so `"5"`
is not a number and `true` is not 1). Unknown extra fields are ignored, so devices with
newer firmware keep working.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ID_RE = r"^[A-Za-z0-9_-]+$"
DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOPIC_ROOT = "vigil/v1"

# 2000-01-01 .. 2100-01-01 in ms: anything outside is a broken clock or a wrong unit.
TS_MIN = 946_684_800_000
TS_MAX = 4_102_444_800_000

DeviceTs = Annotated[int, Field(ge=TS_MIN, lt=TS_MAX)]
# What the databases can hold: no NUL character in text (PostgreSQL refuses it), integers in
# the range of their integer columns.
SafeText = Annotated[str, Field(pattern=r"^[^\x00]*$")]
Int32 = Annotated[int, Field(ge=-(2**31), lt=2**31)]
Int63 = Annotated[int, Field(ge=0, lt=2**63)]
Pin = Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
# PROTOCOL.md constrains alert ids only; visit, memo and evidence ids are any non-empty text.
RefId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
AlertId = Annotated[str, Field(min_length=8, max_length=64, pattern=ID_RE)]
Text500 = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, allow_inf_nan=False)

    # Not Literal[1]: that would let `true` through, since True == 1 in Python.
    v: Annotated[int, Field(strict=True, ge=1, le=1)]


class Loc(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, allow_inf_nan=False)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    acc: float | None = Field(None, ge=0)
    alt: float | None = None
    spd: float | None = Field(None, ge=0)
    hdg: float | None = Field(None, ge=0, le=360)
    src: Literal["gps", "wifi", "cell", "beacon", "manual"] | None = None
    floor: Int32 | None = None


class _Timed(_Msg):
    ts: DeviceTs
    seq: int | None = None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1000, UTC)


class LocationMsg(_Timed):
    loc: Loc
    batt: int | None = Field(None, ge=0, le=100)


class HeartbeatMsg(_Timed):
    batt: int = Field(ge=0, le=100)
    chg: bool | None = None
    rssi: Int32 | None = None
    fw: SafeText | None = None


class StatusMsg(_Msg):
    online: bool
    ts: DeviceTs | None = None


class AlertMsg(_Timed):
    id: AlertId
    type: Literal["red", "man_down", "no_motion", "test"]
    trigger: Literal["button", "fall", "impact", "tilt", "voice", "app"] | None = None
    loc: Loc | None = None
    batt: int | None = Field(None, ge=0, le=100)
    note: Text500 | None = None


class CancelMsg(_Timed):
    alert_id: AlertId
    pin: Pin


class VisitMsg(_Timed):
    id: RefId
    action: Literal["start", "extend", "checkin", "end"]
    duration_s: int | None = Field(None, ge=60, le=86400)
    note: Text500 | None = None
    loc: Loc | None = None
    memo: RefId | None = None
    pin: Pin | None = None
    # The place the worker chose from the service's list (docs/protocol.md), at start.
    place: Annotated[int, Field(ge=1, lt=2**31)] | None = None

    @model_validator(mode="after")
    def _duration_when_needed(self) -> VisitMsg:
        if self.action in ("start", "extend") and self.duration_s is None:
            raise ValueError(f"duration_s is required with action {self.action}")
        return self


class EvidenceMsg(_Timed):
    id: RefId
    alert_id: AlertId | None = None
    visit_id: RefId | None = None
    kind: SafeText | None = None
    codec: SafeText | None = None
    duration_ms: Int63 | None = None
    bytes: Int63 | None = None
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    uri: SafeText | None = None

    @model_validator(mode="after")
    def _one_owner(self) -> EvidenceMsg:
        if (self.alert_id is None) == (self.visit_id is None):
            raise ValueError("exactly one of alert_id or visit_id is required")
        return self


DeviceMessage = (
    LocationMsg | HeartbeatMsg | StatusMsg | AlertMsg | CancelMsg | VisitMsg | EvidenceMsg
)

SCHEMAS: dict[str, type[_Msg]] = {
    "location": LocationMsg,
    "heartbeat": HeartbeatMsg,
    "status": StatusMsg,
    "alert": AlertMsg,
    "alert/cancel": CancelMsg,
    "visit": VisitMsg,
    "evidence": EvidenceMsg,
}

# Suffixes whose handling cannot wait behind location traffic.
URGENT = frozenset({"alert", "alert/cancel", "visit", "evidence"})
TELEMETRY = frozenset({"location", "heartbeat", "status"})


@dataclass(frozen=True)
class Parsed:
    device_id: str
    suffix: str
    msg: DeviceMessage


@dataclass(frozen=True)
class Refusal:
    """Why a message was refused; `device_id`/`suffix` are set when the topic was readable."""

    code: str
    reason: str
    device_id: str | None = None
    suffix: str | None = None
    # The id of the alert, visit or clip the message was about, when it could be read.
    ref_id: str | None = None


def ref_id_of(msg: DeviceMessage) -> str | None:
    """The alert, visit or clip a message is about, for naming it in a `rejected` reply."""
    if isinstance(msg, AlertMsg | VisitMsg | EvidenceMsg):
        return msg.id
    if isinstance(msg, CancelMsg):
        return msg.alert_id
    return None


def split_topic(topic: str) -> tuple[str, str] | None:
    """(device id, suffix) of a device topic, or None when the topic is not one."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return None
    return parts[2], parts[3]


def describe(err: ValidationError) -> str:
    """A short, device-maker-readable reason: the first few fields and what is wrong."""
    parts = []
    for e in err.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"]
        if e["type"] == "json_invalid":
            return "payload is not valid JSON"
        if e["type"] == "model_type" and not where:
            return "payload must be a JSON object"
        if e["type"] == "string_pattern_mismatch" and "x00" in str(e.get("ctx", {})):
            msg = "must not contain a NUL character"
        if msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    more = len(err.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# A key and its colon, in JSON without a backslash (where a string cannot hold a quote).
_KEY = re.compile(rb'"([^"]*)"\s*:')


def duplicate_key(payload: bytes) -> str | None:
    """A key that appears twice in one object of the payload, if any. JSON parsers keep the
    last copy, so `{"type":"test","type":"red"}` would be read as whatever the device's
    firmware did not mean to send. Most payloads are cleared by one regular expression: no
    key written twice anywhere, and no escapes that could spell one differently."""
    if b"\\" not in payload:
        keys = _KEY.findall(payload)
        if len(keys) == len(set(keys)):
            return None
    found: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> None:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                found.append(key)
            seen.add(key)

    try:
        json.loads(payload, object_pairs_hook=pairs)
    except ValueError:
        return None  # not JSON: the schema says so
    return found[0] if found else None


def parse(topic: str, payload: bytes, max_bytes: int = 16 * 1024) -> Parsed | Refusal:
    """Check one device message against the protocol; never raises on bad input."""
    where = split_topic(topic)
    if where is None:
        return Refusal("bad_topic", f"topic {topic[:100]!r} is not under {TOPIC_ROOT}/DEVICE/")
    device_id, suffix = where
    if not DEVICE_RE.match(device_id):
        return Refusal("bad_topic", "device id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    schema = SCHEMAS.get(suffix)
    if schema is None:
        return Refusal("unknown_type", f"unknown message type {suffix[:50]!r}", device_id, suffix)
    if len(payload) > max_bytes:
        return Refusal(
            "too_large",
            f"payload is {len(payload)} bytes; at most {max_bytes} are allowed",
            device_id,
            suffix,
        )
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal("invalid_json", "payload is not UTF-8", device_id, suffix)
    twice = duplicate_key(payload)
    if twice is not None:
        return Refusal("invalid", f"key {twice[:50]!r} appears twice", device_id, suffix)
    try:
        msg = schema.model_validate_json(payload)
    except ValidationError as err:
        reason = describe(err)
        code = "invalid_json" if reason.startswith("payload") else "invalid"
        return Refusal(code, reason, device_id, suffix)
    return Parsed(device_id, suffix, msg)  # type: ignore[arg-type]
