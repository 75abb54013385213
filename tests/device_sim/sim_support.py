"""Test support for device_sim: a private Mosquitto, a stand-in service client and the
PROTOCOL.md v1 payload rules, checked independently of device_sim's own builders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A Mosquitto child process on a loopback port, which can be stopped and started again."""

    def __init__(self, workdir: Path, *, passwords: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if passwords is None:
            lines.append("allow_anonymous true")
        else:
            pwfile = workdir / "passwd"
            pwfile.write_text("")
            for user, pw in passwords.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pwfile), user, pw],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        if os.geteuid() == 0:
            lines.append("user root")
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def device_id(self) -> str:
        return self.topic.split("/")[2]

    @property
    def suffix(self) -> str:
        return "/".join(self.topic.split("/")[3:])

    def json(self) -> Any:
        return json.loads(self.payload)


class Service:
    """What the tests play instead of the monitoring service: sees all device traffic and
    sends commands."""

    def __init__(self, port: int) -> None:
        self.messages: list[Seen] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            raise RuntimeError("service client did not subscribe")

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe("vigil/v1/#", 1)

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        seen = Seen(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos)
        with self._cond:
            self.messages.append(seen)
            self._cond.notify_all()

    def of(self, device_id: str | None = None, suffix: str | None = None) -> list[Seen]:
        with self._cond:
            return [
                m
                for m in self.messages
                if (device_id is None or m.device_id == device_id)
                and (suffix is None or m.suffix == suffix)
            ]

    def wait(
        self,
        predicate: Callable[[list[Seen]], bool],
        timeout: float = 5.0,
        what: str = "condition",
    ) -> list[Seen]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = "\n".join(f"{m.topic} {m.payload[:120]!r}" for m in self.messages[-20:])
                    raise AssertionError(f"timed out waiting for {what}; last seen:\n{shown}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_one(
        self, device_id: str, suffix: str, timeout: float = 5.0, **fields: Any
    ) -> dict[str, Any]:
        def match(m: Seen) -> bool:
            if m.device_id != device_id or m.suffix != suffix:
                return False
            try:
                body = m.json()
            except ValueError:
                return False
            return all(body.get(k) == v for k, v in fields.items())

        msgs = self.wait(lambda ms: any(match(m) for m in ms), timeout, f"{device_id}/{suffix}")
        found: dict[str, Any] = next(m for m in msgs if match(m)).json()
        return found

    def command(self, device_id: str, type: str, **fields: Any) -> None:
        body = {"v": 1, "ts": int(time.time() * 1000), "type": type, **fields}
        self.client.publish(f"vigil/v1/{device_id}/cmd", json.dumps(body), 1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- PROTOCOL.md v1 payload rules, checked independently of device_sim's own builders -----

ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def protocol_problems(suffix: str, body: Any, *, now_ms: int | None = None) -> list[str]:
    """What in `body` breaks PROTOCOL.md v1 for a message on `suffix` (empty: valid)."""
    p: list[str] = []
    if not isinstance(body, dict):
        return ["payload is not a JSON object"]
    if body.get("v") != 1 or not _is_int(body.get("v")):
        p.append("v must be 1")
    if suffix == "status":
        if not isinstance(body.get("online"), bool):
            p.append("status needs online: bool")
        return p
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    ts = body.get("ts")
    if not _is_int(ts) or not now - 86_400_000 < ts <= now + 5_000:
        p.append(f"ts {ts!r} is not a plausible ms epoch")
    if "seq" in body and not _is_int(body["seq"]):
        p.append("seq must be an int")
    if "loc" in body:
        p += loc_problems(body["loc"])
    if "batt" in body and (not _is_int(body["batt"]) or not 0 <= body["batt"] <= 100):
        p.append("batt must be an int 0..100")
    if suffix == "location":
        if "loc" not in body:
            p.append("location needs loc")
    elif suffix == "heartbeat":
        if "batt" not in body:
            p.append("heartbeat needs batt")
        if "chg" in body and not isinstance(body["chg"], bool):
            p.append("chg must be a bool")
        if "rssi" in body and not _is_num(body["rssi"]):
            p.append("rssi must be a number")
        if "fw" in body and not isinstance(body["fw"], str):
            p.append("fw must be a string")
    elif suffix == "alert":
        aid = body.get("id")
        if not isinstance(aid, str) or not 8 <= len(aid) <= 64 or set(aid) - ID_CHARS:
            p.append("alert id must be 8-64 of A-Z a-z 0-9 _ -")
        if body.get("type") not in {"red", "man_down", "no_motion", "test"}:
            p.append(f"bad alert type {body.get('type')!r}")
        if "trigger" in body and body["trigger"] not in {
            "button",
            "fall",
            "impact",
            "tilt",
            "voice",
            "app",
        }:
            p.append(f"bad trigger {body['trigger']!r}")
        if "note" in body and (not isinstance(body["note"], str) or len(body["note"]) > 500):
            p.append("note must be a string of at most 500 characters")
    elif suffix == "alert/cancel":
        pin = body.get("pin")
        if not isinstance(body.get("alert_id"), str):
            p.append("alert/cancel needs alert_id")
        if not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= 8:
            p.append("pin must be 4 to 8 digits")
    elif suffix == "visit":
        action = body.get("action")
        if not isinstance(body.get("id"), str) or not body["id"]:
            p.append("visit needs an id")
        if action not in {"start", "extend", "checkin", "end"}:
            p.append(f"bad visit action {action!r}")
        if action in {"start", "extend"}:
            d = body.get("duration_s")
            if not _is_int(d) or not 60 <= d <= 86400:
                p.append("duration_s must be 60..86400 with start/extend")
        if "note" in body and (not isinstance(body["note"], str) or len(body["note"]) > 500):
            p.append("note must be a string of at most 500 characters")
    elif suffix == "evidence":
        if not isinstance(body.get("id"), str):
            p.append("evidence needs an id")
        if ("alert_id" in body) == ("visit_id" in body):
            p.append("evidence needs one of alert_id or visit_id")
        if "sha256" in body and (
            not isinstance(body["sha256"], str)
            or len(body["sha256"]) != 64
            or set(body["sha256"]) - set("0123456789abcdef")
        ):
            p.append("sha256 must be 64 hex")
    else:
        p.append(f"unknown suffix {suffix!r}")
    return p


def loc_problems(loc: Any) -> list[str]:
    if not isinstance(loc, dict):
        return ["loc must be an object"]
    p: list[str] = []
    if not _is_num(loc.get("lat")) or not -90 <= loc["lat"] <= 90:
        p.append("loc.lat must be -90..90")
    if not _is_num(loc.get("lon")) or not -180 <= loc["lon"] <= 180:
        p.append("loc.lon must be -180..180")
    if "acc" in loc and (not _is_num(loc["acc"]) or loc["acc"] < 0):
        p.append("loc.acc must be >= 0")
    if "spd" in loc and (not _is_num(loc["spd"]) or loc["spd"] < 0):
        p.append("loc.spd must be >= 0")
    if "hdg" in loc and (not _is_num(loc["hdg"]) or not 0 <= loc["hdg"] <= 360):
        p.append("loc.hdg must be 0..360")
    if "alt" in loc and not _is_num(loc["alt"]):
        p.append("loc.alt must be a number")
    if "src" in loc and loc["src"] not in {"gps", "wifi", "cell", "beacon", "manual"}:
        p.append(f"bad loc.src {loc['src']!r}")
    if "floor" in loc and not _is_int(loc["floor"]):
        p.append("loc.floor must be an int")
    return p
