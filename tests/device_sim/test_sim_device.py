"""SimDevice against a real Mosquitto, with a plain paho client standing in for the service."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sim_support import Mosquitto, Seen, Service, free_port

from device_sim.commands import UNPARSEABLE
from device_sim.device import BrokerRefusedError, SimDevice

MakeDevice = Callable[..., SimDevice]


def uid(prefix: str) -> str:
    # Sessions persist on the shared broker, so every test uses device ids of its own.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_connect_announces_online_and_answers_locate(
    broker: Mosquitto,
    make_device: MakeDevice,
    service: Service,
    assert_valid: Callable[[Seen], Any],
) -> None:
    d = make_device(uid("badge"))
    d.connect()
    status = service.wait_one(d.device_id, "status", online=True)
    assert set(status) == {"v", "online", "ts"}
    late = Service(broker.port)  # a subscriber arriving later gets the retained status
    try:
        late.wait_one(d.device_id, "status", online=True)
        retained = late.of(d.device_id, "status")[0]
        assert retained.retain and retained.qos == 1
    finally:
        late.close()

    service.command(d.device_id, "locate")
    assert d.wait_for("locate").payload["type"] == "locate"
    service.wait_one(d.device_id, "location")
    assert_valid(service.of(d.device_id, "location")[0])


def test_alert_is_resent_with_the_same_id_until_received(
    make_device: MakeDevice, service: Service, assert_valid: Callable[[Seen], Any]
) -> None:
    d = make_device(uid("badge"), alert_retry_s=0.2, position=(53.4808, -2.2426))
    d.connect()
    d.battery = 64
    alert_id = d.raise_alert(type="red", trigger="button", note="stairwell B")
    assert d.pending_alerts == [alert_id]

    copies = service.wait(lambda _: len(service.of(d.device_id, "alert")) >= 3, what="3 copies")
    alerts = service.of(d.device_id, "alert")
    assert {m.payload for m in alerts} == {alerts[0].payload}, "copies must be identical"
    body = assert_valid(alerts[0])
    assert body["id"] == alert_id and body["type"] == "red" and body["trigger"] == "button"
    assert body["loc"]["lat"] == 53.4808 and body["batt"] == 64 and body["note"] == "stairwell B"
    assert copies

    service.command(d.device_id, "alert_received", alert_id=alert_id)
    d.wait_for("alert_received", alert_id=alert_id)
    assert d.pending_alerts == []
    settled = len(service.of(d.device_id, "alert"))
    time.sleep(0.6)
    assert len(service.of(d.device_id, "alert")) <= settled + 1  # one may have been in flight


def test_other_alerts_stay_pending_when_one_is_received(
    make_device: MakeDevice, service: Service
) -> None:
    d = make_device(uid("phone"), alert_retry_s=5.0)
    d.connect()
    first, second = d.raise_alert(), d.raise_alert(type="man_down", trigger="fall")
    service.command(d.device_id, "alert_received", alert_id=first)
    d.wait_for("alert_received", alert_id=first)
    assert d.pending_alerts == [second]


def test_alert_raised_while_broker_is_down_goes_out_when_it_returns(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    d = SimDevice(uid("badge"), "pw", port=own_broker.port, alert_retry_s=0.3)
    d.connect()
    own_broker.stop()
    deadline = time.monotonic() + 5
    while d.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not d.connected
    alert_id = d.raise_alert(type="man_down", trigger="impact")
    own_broker.start()
    service = Service(own_broker.port)
    try:
        d.wait_connected(timeout=10)
        body = service.wait_one(d.device_id, "alert", timeout=5, id=alert_id)
        assert body["type"] == "man_down"
        service.command(d.device_id, "alert_received", alert_id=alert_id)
        d.wait_for("alert_received", alert_id=alert_id)
        assert d.pending_alerts == []
    finally:
        service.close()
        d.disconnect()


def test_restarted_simulator_sends_alerts_from_its_state_dir(
    broker: Mosquitto, service: Service, tmp_path: Path
) -> None:
    device_id = uid("badge")
    before = SimDevice(device_id, "pw", port=broker.port, state_dir=tmp_path)
    alert_id = before.raise_alert(type="red")  # never connected: only in the outbox file
    seq_before = json.loads((tmp_path / f"{device_id}.json").read_text())
    assert [a["id"] for a in seq_before["outbox"]] == [alert_id]
    del before

    after = SimDevice(device_id, "pw", port=broker.port, state_dir=tmp_path, alert_retry_s=0.5)
    assert after.pending_alerts == [alert_id]
    after.connect()
    try:
        service.wait_one(device_id, "alert", id=alert_id)
        after.heartbeat()
        beat = service.wait_one(device_id, "heartbeat")
        first = service.of(device_id, "alert")[0].json()
        assert beat["seq"] > first["seq"], "seq keeps increasing across restarts"
        service.command(device_id, "alert_received", alert_id=alert_id)
        after.wait_for("alert_received", alert_id=alert_id)
        saved = json.loads((tmp_path / f"{device_id}.json").read_text())
        assert saved["outbox"] == []
    finally:
        after.disconnect()


def test_kill_makes_the_broker_publish_the_last_will(
    make_device: MakeDevice, service: Service
) -> None:
    d = make_device(uid("badge"))
    d.connect()
    service.wait_one(d.device_id, "status", online=True)
    started = time.monotonic()
    d.kill()
    assert time.monotonic() - started < 2
    will = service.wait_one(d.device_id, "status", timeout=5, online=False)
    assert will == {"v": 1, "online": False}
    assert not d.connected


def test_clean_disconnect_sends_no_last_will(make_device: MakeDevice, service: Service) -> None:
    d = make_device(uid("badge"))
    d.connect()
    service.wait_one(d.device_id, "status", online=True)
    d.cancel_alert("0123456789abcdef", "1234")  # QoS 1, must not be lost by disconnect()
    d.disconnect()
    service.wait_one(d.device_id, "alert/cancel")
    time.sleep(0.5)
    assert all(m.json()["online"] for m in service.of(d.device_id, "status"))


def test_disconnect_can_announce_offline(make_device: MakeDevice, service: Service) -> None:
    d = make_device(uid("badge"))
    d.connect()
    d.disconnect(announce_offline=True)
    status = service.wait_one(d.device_id, "status", online=False)
    assert isinstance(status["ts"], int)


def test_device_reconnects_after_kill(make_device: MakeDevice, service: Service) -> None:
    d = make_device(uid("badge"))
    d.connect()
    d.kill()
    service.wait_one(d.device_id, "status", online=False)
    d.connect()
    service.command(d.device_id, "locate")
    d.wait_for("locate")


@pytest.mark.parametrize("protocol", [4, 5])
def test_commands_sent_while_away_arrive_on_reconnect(
    make_device: MakeDevice, service: Service, protocol: int
) -> None:
    device_id = uid(f"mqtt{protocol}")
    d = make_device(device_id, protocol=protocol)
    d.connect()
    d.disconnect()
    service.command(device_id, "alert_acknowledged", alert_id="abcdefgh-1")

    again = make_device(device_id, protocol=protocol)  # a fresh process: only the session
    again.connect()
    assert again.wait_for("alert_acknowledged").payload["alert_id"] == "abcdefgh-1"


def test_wait_for_matches_fields_and_explains_a_timeout(
    make_device: MakeDevice, service: Service
) -> None:
    d = make_device(uid("badge"))
    d.connect()
    service.command(d.device_id, "cancel_rejected", alert_id="aaaaaaaa")
    service.command(d.device_id, "cancel_rejected", alert_id="bbbbbbbb")
    got = d.wait_for("cancel_rejected", alert_id="bbbbbbbb")
    assert got.payload["alert_id"] == "bbbbbbbb"
    # Already received earlier: still found, and the first match wins.
    assert d.wait_for("cancel_rejected", timeout=0).payload["alert_id"] == "aaaaaaaa"
    assert [c.type for c in d.commands] == ["cancel_rejected", "cancel_rejected"]
    assert d.commands[0].received_at <= d.commands[1].received_at <= time.time()

    with pytest.raises(TimeoutError) as caught:
        d.wait_for("alert_cancelled", timeout=0.2, alert_id="aaaaaaaa")
    message = str(caught.value)
    assert "alert_cancelled" in message and "received 2" in message and "bbbbbbbb" in message


def test_unparseable_commands_are_recorded_and_ignored(
    make_device: MakeDevice, service: Service
) -> None:
    d = make_device(uid("badge"))
    d.connect()
    topic = f"vigil/v1/{d.device_id}/cmd"
    service.client.publish(topic, b"\xff{not json", 1).wait_for_publish(5)
    service.client.publish(topic, b"[1, 2]", 1).wait_for_publish(5)
    service.command(d.device_id, "locate")
    d.wait_for("locate")
    bad = [c for c in d.commands if c.type == UNPARSEABLE]
    assert [c.raw for c in bad] == [b"\xff{not json", b"[1, 2]"]
    assert d.connected


def test_every_message_is_valid_protocol_v1(
    make_device: MakeDevice, service: Service, assert_valid: Callable[[Seen], Any]
) -> None:
    d = make_device(uid("phone"), protocol=4)
    d.connect()
    clip = b"OggS" + bytes(range(256)) * 10
    d.send_location(51.51, -0.12, acc=8.5, spd=1.4, hdg=359.99)
    d.heartbeat(batt=42)
    alert_id = d.raise_alert(type="test", trigger="app")
    d.cancel_alert(alert_id, d.cancel_pin)
    visit_id = d.start_visit(duration_s=1800, note="Home visit, 14 Elm St", memo="clip-1")
    d.extend_visit(visit_id, 600)
    d.checkin_visit(visit_id)
    d.end_visit(visit_id, pin="1234")
    d.send_evidence("clip-1", visit_id=visit_id, data=clip, duration_ms=4000)
    service.wait_one(d.device_id, "evidence")

    mine = [m for m in service.of(d.device_id) if m.suffix != "status"]
    bodies = [assert_valid(m) for m in mine]
    assert [m.suffix for m in mine] == [
        "location", "heartbeat", "alert", "alert/cancel", "visit", "visit", "visit", "visit",
        "evidence",
    ]  # fmt: skip
    seqs = [b["seq"] for b in bodies]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    by_suffix = {m.suffix: b for m, b in zip(mine, bodies, strict=True)}
    assert by_suffix["location"]["loc"] == {
        "lat": 51.51, "lon": -0.12, "acc": 8.5, "spd": 1.4, "hdg": 0.0, "src": "gps"
    }  # fmt: skip
    assert by_suffix["heartbeat"]["batt"] == 42 and by_suffix["heartbeat"]["chg"] is False
    assert by_suffix["alert/cancel"] == {**by_suffix["alert/cancel"], "alert_id": alert_id}
    assert [b["action"] for b in bodies[4:8]] == ["start", "extend", "checkin", "end"]
    assert bodies[4]["note"] == "Home visit, 14 Elm St" and bodies[4]["memo"] == "clip-1"
    assert bodies[7]["pin"] == "1234"
    evidence = by_suffix["evidence"]
    assert evidence["sha256"] == hashlib.sha256(clip).hexdigest()
    assert evidence["bytes"] == len(clip) and evidence["kind"] == "audio"
    assert evidence["visit_id"] == visit_id and "alert_id" not in evidence


def test_typed_api_refuses_what_the_protocol_does_not_allow(make_device: MakeDevice) -> None:
    d = make_device(uid("badge"))
    with pytest.raises(ValueError, match="alert type"):
        d.raise_alert(type="visit_overdue")
    with pytest.raises(ValueError, match="PIN"):
        d.cancel_alert("abcdefgh", "12")
    with pytest.raises(ValueError, match="duration_s"):
        d.start_visit(duration_s=30)
    with pytest.raises(ValueError, match="one of alert_id or visit_id"):
        d.send_evidence("clip-9")
    with pytest.raises(ValueError, match="device id"):
        SimDevice("bad/id", "pw")
    assert d.pending_alerts == []


def test_publish_raw_sends_exact_bytes(make_device: MakeDevice, service: Service) -> None:
    d = make_device(uid("badge"))
    d.connect()
    d.publish_raw("alert", b"{not json")
    d.publish_raw("x", "{}", qos=0, topic=f"vigil/v1/{d.device_id}/elsewhere")
    service.wait(lambda _: len(service.of(d.device_id)) >= 3, what="raw messages")
    raw = {m.suffix: m.payload for m in service.of(d.device_id)}
    assert raw["alert"] == b"{not json" and raw["elsewhere"] == b"{}"


def test_refused_credentials_raise_a_clear_error(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path, passwords={"badge-ok": "right"})
    server.start()
    try:
        for protocol in (4, 5):
            d = SimDevice("badge-ok", "wrong", port=server.port, protocol=protocol)
            started = time.monotonic()
            with pytest.raises(BrokerRefusedError, match="refused"):
                d.connect(timeout=5)
            assert time.monotonic() - started < 3
            assert not d.connected
        good = SimDevice("badge-ok", "right", port=server.port)
        good.connect(timeout=5)
        good.disconnect()
    finally:
        server.stop()


def test_connect_times_out_when_nothing_listens() -> None:
    d = SimDevice("badge-nowhere", "pw", port=free_port())
    with pytest.raises(TimeoutError, match="not connected"):
        d.connect(timeout=0.5)
    assert not d.connected
