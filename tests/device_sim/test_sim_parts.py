"""The simulator's pure parts: command parsing, the durable state file, message builders."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_support import loc_problems

from device_sim import messages
from device_sim.commands import UNPARSEABLE, Command, CommandLog
from device_sim.device import SimDevice
from device_sim.state import SEQ_BLOCK, DeviceState


def test_command_parse() -> None:
    ok = Command.parse(b'{"v":1,"ts":1,"type":"alert_received","alert_id":"abcdefgh"}', 5.0)
    assert (ok.type, ok.payload["alert_id"], ok.received_at) == ("alert_received", "abcdefgh", 5.0)
    for junk in (b"", b"\xff", b"[]", b'"x"', b'{"type": 3}', b"{"):
        bad = Command.parse(junk)
        assert bad.type == UNPARSEABLE and bad.raw == junk
    with pytest.raises(AttributeError):
        ok.type = "x"  # type: ignore[misc]


def test_command_log_wakes_a_waiter() -> None:
    log = CommandLog("badge-1")
    threading.Timer(0.05, lambda: log.append(Command.parse(b'{"type":"locate"}'))).start()
    started = time.monotonic()
    assert log.wait_for("locate", 2.0, {}).type == "locate"
    assert time.monotonic() - started < 1.0


def test_state_survives_a_restart_and_never_reuses_seq(tmp_path: Path) -> None:
    state = DeviceState("badge-1", tmp_path)
    assert [state.next_seq() for _ in range(3)] == [1, 2, 3]
    state.add_alert("alert-0001", b'{"id":"alert-0001"}')
    state.add_alert("alert-0002", b'{"id":"alert-0002"}')
    state.remove_alert("alert-0001")

    crashed = DeviceState("badge-1", tmp_path)  # no save(): as after a crash
    assert crashed.pending_ids() == ["alert-0002"]
    assert crashed.next_seq() > 3
    assert crashed.next_seq() <= SEQ_BLOCK + 5  # reserved in blocks, not one write each

    crashed.save()
    last = crashed.next_seq()
    crashed.save()
    assert DeviceState("badge-1", tmp_path).next_seq() == last + 1

    due = crashed.take_due(100.0, 2.0)
    assert [p.alert_id for p in due] == ["alert-0002"] and due[0].payload.startswith(b"{")
    assert crashed.take_due(101.0, 2.0) == []
    assert crashed.seconds_to_next_due(101.0, 2.0) == pytest.approx(1.0)
    crashed.mark_all_unsent()
    assert len(crashed.take_due(101.0, 2.0)) == 1


def test_unreadable_state_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "badge-1.json").write_text("{half")
    state = DeviceState("badge-1", tmp_path)
    assert state.pending_ids() == [] and state.next_seq() == 1
    assert json.loads((tmp_path / "badge-1.json").read_text())["outbox"] == []


@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    acc=st.floats(0, 1e4),
    spd=st.floats(0, 100),
    hdg=st.floats(-1e4, 1e4),
)
def test_loc_is_always_in_range(lat: float, lon: float, acc: float, spd: float, hdg: float) -> None:
    assert loc_problems(messages.loc(lat, lon, acc=acc, spd=spd, hdg=hdg)) == []


def test_builders_refuse_invalid_values() -> None:
    with pytest.raises(ValueError):
        messages.loc(91, 0)
    with pytest.raises(ValueError):
        messages.loc(0, 0, src="radio")
    with pytest.raises(ValueError):
        messages.alert("short", "red", trigger=None, position=None, batt=None, note=None)
    with pytest.raises(ValueError):
        messages.alert("long-enough", "red", trigger="shout", position=None, batt=None, note=None)
    with pytest.raises(ValueError):
        messages.alert("long-enough", "red", trigger=None, position=None, batt=101, note=None)
    with pytest.raises(ValueError):
        messages.alert("long-enough", "red", trigger=None, position=None, batt=None, note="x" * 501)
    with pytest.raises(ValueError):
        messages.visit("v-1", "extend", duration_s=86401)
    with pytest.raises(ValueError):
        messages.visit("v-1", "pause")
    assert messages.visit("v-1", "checkin") == {"id": "v-1", "action": "checkin"}
    assert messages.status(False, None) == {"v": 1, "online": False}


def test_upload_evidence_puts_the_bytes_with_basic_auth() -> None:
    got: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            got.update(
                path=self.path, auth=self.headers["Authorization"], body=self.rfile.read(length)
            )
            self.send_response(201 if self.path.endswith("/clip-1") else 409)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        device = SimDevice("badge-up", "s3cret")
        base = f"http://127.0.0.1:{server.server_port}/"
        assert device.upload_evidence(base, "clip-1", b"OggS...") == 201
        assert got["path"] == "/api/v1/devices/badge-up/evidence/clip-1"
        assert got["auth"] == "Basic " + base64.b64encode(b"badge-up:s3cret").decode()
        assert got["body"] == b"OggS..."
        assert device.upload_evidence(base, "clip-2", b"x") == 409
        with pytest.raises(ValueError):
            device.upload_evidence("file:///etc/passwd", "clip-1", b"x")
    finally:
        server.shutdown()
        server.server_close()
