"""OwnTracks' messages as its apps send them (owntracks.org/booklet/tech/json/ and
/tech/http/), written for these tests: Android's periodic report, iOS's manual report with a
point of interest, the broker's last will, a region transition, a card."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def now_s() -> int:
    return int(time.time())


def android_location(device_id: str, tst: int | None = None, **changes: Any) -> dict[str, Any]:
    """A background report from the Android app (`t: "p"`), extended data on, in HTTP mode
    (where `topic` is added)."""
    tst = tst or now_s()
    return {
        "_type": "location",
        "_id": "4f3a2c1d",
        "acc": 12,
        "alt": 35,
        "batt": 81,
        "bs": 1,
        "conn": "m",
        "created_at": tst + 2,
        "lat": 51.5072,
        "lon": -0.1276,
        "t": "p",
        "tid": "aw",
        "tst": tst,
        "vac": 3,
        "vel": 18,
        "topic": f"owntracks/{device_id}/{device_id}",
        **changes,
    }


def ios_help_report(tst: int | None = None, word: str = "Help") -> dict[str, Any]:
    """A location published by hand on iOS (`t: "u"`) with a point of interest set."""
    tst = tst or now_s()
    return {
        "_type": "location",
        "acc": 5,
        "alt": 21,
        "batt": 64,
        "bs": 1,
        "cog": 90,
        "conn": "w",
        "created_at": tst,
        "lat": 52.085284,
        "lon": 5.120975,
        "m": 1,
        "poi": word,
        "t": "u",
        "tid": "aw",
        "tst": tst,
        "vac": 8,
    }


def lwt(connected_at: int | None = None) -> dict[str, Any]:
    return {"_type": "lwt", "tst": connected_at or now_s() - 600}


def transition(event: str = "enter", tst: int | None = None) -> dict[str, Any]:
    tst = tst or now_s()
    return {
        "_type": "transition",
        "wtst": tst - 86400,
        "lat": 51.5101,
        "lon": -0.1340,
        "tst": tst,
        "acc": 14,
        "tid": "aw",
        "event": event,
        "desc": "12 Elm St",
        "t": "c",
        "rid": "6da9cf",
    }


def card() -> dict[str, Any]:
    face = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    return {"_type": "card", "tid": "aw", "name": "Alex Worker", "face": face}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()
