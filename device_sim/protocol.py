"""Constants, topics and value rules of the Vigil device protocol v1 (PROTOCOL.md)."""

from __future__ import annotations

import json
import re
import time
from typing import Any, Final

PROTOCOL_VERSION: Final = 1
TOPIC_ROOT: Final = "vigil/v1"
MAX_PAYLOAD_BYTES: Final = 16 * 1024
MAX_NOTE_CHARS: Final = 500
VISIT_MIN_S: Final = 60
VISIT_MAX_S: Final = 86400

DEVICE_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALERT_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{8,64}")
PIN_RE: Final = re.compile(r"[0-9]{4,8}")

# Message suffixes under vigil/v1/DEVICE/.
LOCATION: Final = "location"
HEARTBEAT: Final = "heartbeat"
STATUS: Final = "status"
ALERT: Final = "alert"
ALERT_CANCEL: Final = "alert/cancel"
VISIT: Final = "visit"
EVIDENCE: Final = "evidence"
CMD: Final = "cmd"

ALERT_TYPES: Final = frozenset({"red", "man_down", "no_motion", "test"})
TRIGGERS: Final = frozenset({"button", "fall", "impact", "tilt", "voice", "app"})
LOC_SOURCES: Final = frozenset({"gps", "wifi", "cell", "beacon", "manual"})
VISIT_ACTIONS: Final = frozenset({"start", "extend", "checkin", "end"})

# Command types the service sends on vigil/v1/DEVICE/cmd.
ALERT_RECEIVED: Final = "alert_received"
ALERT_ACKNOWLEDGED: Final = "alert_acknowledged"
ALERT_CANCELLED: Final = "alert_cancelled"
CANCEL_REJECTED: Final = "cancel_rejected"
ALERT_CLOSED: Final = "alert_closed"
VISIT_STARTED: Final = "visit_started"
VISIT_ENDED: Final = "visit_ended"
VISIT_END_REJECTED: Final = "visit_end_rejected"
VISIT_DUE: Final = "visit_due"
LOCATE: Final = "locate"
REJECTED: Final = "rejected"
COMMAND_TYPES: Final = frozenset(
    {
        ALERT_RECEIVED,
        ALERT_ACKNOWLEDGED,
        ALERT_CANCELLED,
        CANCEL_REJECTED,
        ALERT_CLOSED,
        VISIT_STARTED,
        VISIT_ENDED,
        VISIT_END_REJECTED,
        VISIT_DUE,
        LOCATE,
        REJECTED,
    }
)

JsonObject = dict[str, Any]


def topic(device_id: str, suffix: str) -> str:
    """The topic a device publishes `suffix` messages on (or receives commands on, for `cmd`)."""
    return f"{TOPIC_ROOT}/{device_id}/{suffix}"


def now_ms() -> int:
    """Milliseconds since the Unix epoch, UTC, as the protocol's `ts` wants it."""
    return time.time_ns() // 1_000_000


def check_device_id(device_id: str) -> str:
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return device_id


def check_pin(pin: str) -> str:
    if not PIN_RE.fullmatch(pin):
        raise ValueError("a PIN is 4 to 8 digits (use publish_raw to send a malformed one)")
    return pin


def encode(payload: JsonObject) -> bytes:
    """A payload as devices send it: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
