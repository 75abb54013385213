"""Alarm-receiving centres: Vigil's own SIA DC-09 transmitter (escalation/dc09.py,
escalation/arc.py) against pysiaalarm, an independent receiver, on a loopback port, in
clear and encrypted; every event code, the restore, a NAK, a DUH and a centre that is down."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from pysiaalarm import SIAAccount
from pysiaalarm.event import NAKEvent, SIAEvent
from sqlalchemy import select

from escalation import arc, dc09, policies, restores
from escalation.models import Notification
from escalation.policies import PolicyError
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertEvent
from monitor.alerts.states import AlertType, Outcome
from monitor.devices.models import Device
from tests.arc_support import (
    ACCOUNT,
    KEY_ENV,
    KEYS,
    PREFIX,
    RECEIVER,
    allow_several_xdata,
    centre,
    free_port,
    vigil_key,
    xdata,
)
from tests.fast.handlers import Handlers
from tests.support import wait_until

LINE = dc09.Line(ACCOUNT, PREFIX, RECEIVER)


def _policy(address: str) -> str:
    return f"""
contacts:
  - name: Centre
    arc: "{address}"
policies:
  - name: To the centre
    steps:
      - {{channel: arc, to: [Centre]}}
"""


def _load(svc: Handlers, text: str) -> None:
    parsed = policies.parse_file(text)
    with svc.store.begin() as db:
        policies.replace_all(db, parsed)


def _arc_notes(svc: Handlers) -> list[Notification]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(Notification).where(Notification.channel == "arc").order_by(Notification.id)
            )
        )


def _timeline(svc: Handlers, pk: int) -> list[str]:
    with svc.store.session() as db:
        return [
            e.text
            for e in db.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == pk).order_by(AlertEvent.id)
            )
        ]


def _pk(svc: Handlers, device_alert_id: str) -> int:
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
    assert pk is not None
    return pk


def _codes(events: list[SIAEvent]) -> list[tuple[str | None, str | None]]:
    return sorted((e.event_qualifier, e.event_type) for e in events)


# -- the encoder, read by pysiaalarm -----------------------------------------------------------


@pytest.mark.parametrize("bits", [None, 128, 192, 256])
@pytest.mark.parametrize(
    "qualifier,code", [("1", c) for c in (120, 121, 100, 102, 602)] + [("3", 120)]
)
def test_each_event_is_read_and_acknowledged_by_pysiaalarm(
    bits: int | None, qualifier: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_several_xdata(monkeypatch)
    text_key = KEYS[bits] if bits else None
    key = bytes.fromhex(vigil_key(text_key)) if text_key else None
    data = dc09.adm_cid(ACCOUNT, qualifier, code)
    sent = dc09.frame(
        "ADM-CID", 42, LINE, data, "[X-0.127600][Y51.507200]", now=datetime.now(UTC), key=key
    )
    assert sent.startswith(b"\n") and sent.endswith(b"\r")
    body = sent[9:-1]
    assert sent[5:9] == f"0{len(body):03X}".encode()  # "0LLL", the bytes from '"' on

    event = SIAEvent.from_line(sent.decode().strip(), {ACCOUNT: SIAAccount(ACCOUNT, text_key)})
    assert event.valid_message  # its CRC, computed by pysiaalarm
    assert event.encrypted is (key is not None)
    assert (event.event_qualifier, event.event_type) == (qualifier, f"{code:03d}")
    assert (event.account, event.receiver, event.line, event.sequence) == (
        ACCOUNT,
        "R" + RECEIVER,
        "L" + PREFIX,
        "0042",
    )
    assert xdata(event) == {"X": "-0.127600", "Y": "51.507200"}
    assert event.valid_timestamp and event.response is not None
    assert event.response.value == "ACK"

    answer = dc09.read_answer(event.create_response(), key)
    assert (answer.kind, answer.seq, answer.account) == ("ACK", 42, ACCOUNT)
    if key is not None:
        assert answer.stamp  # the encrypted ACK carries the receiver's time
        with pytest.raises(ValueError, match="does not decrypt with this key"):
            dc09.read_answer(event.create_response(), bytes(len(key)))
        # The same ACK in clear, as anyone on the path could send it, is no answer.
        plain = SIAEvent.from_line(
            dc09.frame("ADM-CID", 42, LINE, data, now=datetime.now(UTC)).decode().strip(),
            {ACCOUNT: SIAAccount(ACCOUNT)},
        ).create_response()
        assert dc09.read_answer(plain, None).kind == "ACK"
        with pytest.raises(ValueError, match="ACK in clear"):
            dc09.read_answer(plain, key)


def test_nak_duh_and_damaged_answers() -> None:
    nak = dc09.read_answer(NAKEvent().create_response(), None)
    assert (nak.kind, nak.seq) == ("NAK", 0) and nak.stamp
    # pysiaalarm answers DUH to an event it has no code for (here an SIA-DCS "AC").
    body = f'"SIA-DCS"0007R{RECEIVER}L{PREFIX}#{ACCOUNT}[#{ACCOUNT}|Nri1/AC]'
    line = f"{dc09.crc16(body.encode()):04X}0{len(body):03X}{body}"
    unknown = SIAEvent.from_line(line, {ACCOUNT: SIAAccount(ACCOUNT)})
    duh = dc09.read_answer(unknown.create_response(), None)
    assert (duh.kind, duh.seq) == ("DUH", 7)
    damaged = unknown.create_response().replace(b'"DUH"0007', b'"DUH"0006')
    with pytest.raises(ValueError, match="CRC"):
        dc09.read_answer(damaged, None)


@pytest.mark.parametrize("keyed", [False, True])
def test_a_duh_fails_the_send_without_a_retry(keyed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A centre that does not understand the event: pysiaalarm's DUH (to an SIA-DCS code it
    lacks), played back by a loopback socket, since it never answers DUH to ADM-CID. On an
    encrypted link a DUH, which is never encrypted, is not trusted: the send is tried again."""
    body = f'"SIA-DCS"0007R{RECEIVER}L{PREFIX}#{ACCOUNT}[#{ACCOUNT}|Nri1/AC]'
    line = f"{dc09.crc16(body.encode()):04X}0{len(body):03X}{body}"
    duh = SIAEvent.from_line(line, {ACCOUNT: SIAAccount(ACCOUNT)}).create_response()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(duh)

        t = threading.Thread(target=answer)
        t.start()
        address = f"sia-dc09://127.0.0.1:{port}?account={ACCOUNT}&prefix=0"
        if keyed:
            monkeypatch.setenv(KEY_ENV, vigil_key(KEYS[128]))
            address += f"&key=env:{KEY_ENV}"
        with pytest.raises(arc.Unreachable if keyed else arc.Refused, match="DUH"):
            arc.send(address, 7, "1120 00 000")
        t.join()


def test_arc_addresses_in_policy_files() -> None:
    good = (
        "sia-dc09://arc.example.net:5000?account=1234&prefix=1&receiver=2&key=env:VIGIL_ARC_KEY_A"
    )
    parsed = policies.parse_file(_policy(good))
    assert parsed.contacts[0].arc == good
    address = arc.parse(good)
    assert (address.host, address.port, address.key_env) == (
        "arc.example.net",
        5000,
        "VIGIL_ARC_KEY_A",
    )
    base = "sia-dc09://h:5000?account=1234&prefix=1"
    bad = {
        base + "&key=00112233445566778899AABBCCDDEEFF": "never the key itself",
        base + "&key=env:VIGIL_TWILIO_AUTH_TOKEN": "VIGIL_ARC_KEY_",
        base.replace("1234", "12"): "account must be 3 to 16 hexadecimal",
        base.replace(":5000", ""): "needs a host and a port",
        base.replace("sia-dc09", "https"): "starts sia-dc09://",
        base + "&colour=red": "unknown ARC setting 'colour'",
    }
    for address_text, why in bad.items():
        with pytest.raises(PolicyError) as caught:
            policies.parse_file(_policy(address_text))
        assert str(caught.value).startswith("contacts[0].arc: Value error") and why in str(
            caught.value
        )
    text = f"""
contacts:
  - name: Centre
    arc: "{good}"
  - name: Manager
    phone: "+447700900100"
policies:
  - name: P
    steps:
      - {{channel: arc, to: [worker, Manager]}}
"""
    with pytest.raises(PolicyError) as caught:
        policies.parse_file(text)
    assert "to[0]: arc goes to contacts with an arc address, not 'worker'" in str(caught.value)
    assert "to[1]: contact 'Manager' has no arc address" in str(caught.value)


def test_keys_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "sia-dc09://h:5000?account=1234&prefix=1&key=env:VIGIL_ARC_KEY_T"
    monkeypatch.delenv("VIGIL_ARC_KEY_T", raising=False)
    assert arc.key_problems([uri]) == [f"{uri}: VIGIL_ARC_KEY_T is not set on this replica"]
    monkeypatch.setenv("VIGIL_ARC_KEY_T", "00112233")
    assert "not a 128-, 192- or 256-bit key" in arc.key_problems([uri])[0]
    monkeypatch.setenv("VIGIL_ARC_KEY_T", "00112233445566778899aabbccddeeff")
    assert arc.key_problems([uri]) == []
    assert arc.key_of(arc.parse(uri)) == bytes.fromhex("00112233445566778899aabbccddeeff")


# -- end to end: a service's escalation to the centre ------------------------------------------


@pytest.mark.parametrize("bits", [None, 256])
def test_every_alert_reaches_the_centre_and_its_restore_follows(
    svc: Handlers, bits: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_several_xdata(monkeypatch)
    text_key = KEYS[bits] if bits else None
    if text_key:
        monkeypatch.setenv(KEY_ENV, vigil_key(text_key))
    with centre(key=text_key) as c:
        _load(svc, _policy(c.address()))
        badge, _ = svc.badge("badge-arc", name="Amira Khan")
        red = badge.raise_alert("red")
        man_down = badge.raise_alert("man_down")
        badge.raise_alert("no_motion")
        test = badge.raise_alert("test")
        # A visit overdue on a phone that has sent no fix: Vigil raises it with no position.
        unlocated, _ = svc.badge("badge-arc-nofix", name="Amira Khan")
        with svc.store.begin() as db:
            device = db.get(Device, unlocated.device_id)
            org_id = alerts.get(db, _pk(svc, red)).org_id
            assert device is not None
            overdue = alerts.raise_by_service(
                db, device=device, org_id=org_id, kind=AlertType.VISIT_OVERDUE, text="late"
            ).id
        events = c.took(5)
        # The worker keys the duress PIN on the red alert: the burst tells the centre 121.
        badge.cancel_alert(red, badge.duress_pin)
        events = c.took(6)
        assert _codes(events) == [
            ("1", "100"),
            ("1", "100"),
            ("1", "102"),
            ("1", "120"),
            ("1", "121"),
            ("1", "602"),
        ]
        for e in events:
            assert e.encrypted is (text_key is not None) and e.account == ACCOUNT
            assert (e.receiver, e.line) == ("R" + RECEIVER, "L" + PREFIX)
        panic = next(e for e in events if e.event_type == "120")
        assert xdata(panic)["X"] == "-0.127600" and xdata(panic)["Y"] == "51.507200"
        assert xdata(panic)["I"] == f"Vigil alert #{_pk(svc, red)}: Amira Khan (Housing)"
        assert "X" not in xdata(next(e for e in events if e.event_type == "102"))  # no fix known
        assert len({e.sequence for e in events}) == 6
        # The test alert's timeline says where it went: operators and the centre, nobody else.
        said = "a test alert goes to operators and the alarm-receiving centre only"
        assert any(said in t for t in _timeline(svc, _pk(svc, test)))

        pk = _pk(svc, red)
        wait_until(
            lambda: sum("delivered (seq" in t for t in _timeline(svc, pk)) == 2,
            timeout=10,
            what="both of the red alert's events delivered in its timeline",
        )
        assert any(t.startswith("ARC to Centre (sia-dc09://") for t in _timeline(svc, pk))

        # Resolved: the centre hears the restore of each event it took (120 and 121); the
        # worker cancels the man-down: its restore too. A test report has no restore.
        with svc.store.begin() as db:
            alerts.resolve(db, pk, actor="user:op1", outcome=Outcome.GENUINE_EMERGENCY)
        badge.cancel_alert(man_down, badge.cancel_pin)
        with svc.store.begin() as db:
            for a in db.scalars(select(Alert).where(Alert.type.in_(["test", "visit_overdue"]))):
                alerts.resolve(db, a.id, actor="user:op1", outcome=Outcome.TEST)
        events = c.took(10)
        assert _codes(events[6:]) == [("3", "100"), ("3", "102"), ("3", "120"), ("3", "121")]
        why = {e.event_type: xdata(e)["I"] for e in events[6:]}
        assert why["120"] == why["121"] == f"Vigil alert #{pk} resolved: genuine_emergency"
        assert why["100"] == f"Vigil alert #{_pk(svc, man_down)} cancelled by the worker (PIN)"
        wait_until(
            lambda: all(n.status == "delivered" for n in _arc_notes(svc)),
            timeout=10,
            what="every ARC notification delivered",
        )
        assert any(
            "restore of event 121 queued, the alert is resolved" in t for t in _timeline(svc, pk)
        )
        assert overdue in {n.alert_id for n in _arc_notes(svc) if n.step_id is None}
        # Once only: nothing more is owed, and a while later nothing more was sent.
        with svc.store.session() as db:
            assert restores.owed(db) == []
        time.sleep(0.5)
        assert len(c.took(10)) == 10 and len(_arc_notes(svc)) == 10

        # The policy as dumped names the key's variable, never the key.
        with svc.store.session() as db:
            dumped = policies.dump(db)
        assert c.address() in dumped
        if text_key:
            assert vigil_key(text_key) not in dumped and text_key not in dumped


def test_a_nak_is_answered_with_a_new_timestamp(
    svc: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_several_xdata(monkeypatch)
    with centre(nak_first=True) as c:
        _load(svc, _policy(c.address()))
        badge, _ = svc.badge("badge-nak")
        pk = _pk(svc, badge.raise_alert("red"))
        (event,) = c.took(1)
        assert c.refused == 1 and event.event_type == "120"
        wait_until(
            lambda: any("ACK after a NAK" in t for t in _timeline(svc, pk)),
            timeout=10,
            what="the ACK after the NAK in the timeline",
        )
        (n,) = _arc_notes(svc)
        assert (n.status, n.attempts) == ("delivered", 1)


@pytest.mark.parametrize("bits", [None, 128])
def test_over_udp(svc: Handlers, bits: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_several_xdata(monkeypatch)
    text_key = KEYS[bits] if bits else None
    if text_key:
        monkeypatch.setenv(KEY_ENV, vigil_key(text_key))
    with centre(key=text_key, udp=True, nak_first=True) as c:
        _load(svc, _policy(c.address()))
        badge, _ = svc.badge("badge-udp")
        alert_id = badge.raise_alert("man_down")
        (event,) = c.took(1)
        assert (event.event_qualifier, event.event_type, event.encrypted) == (
            "1",
            "100",
            bits is not None,
        )
        assert c.refused == 1  # the NAK answered over UDP too
        badge.cancel_alert(alert_id, badge.cancel_pin)
        restore = c.took(2)[1]
        assert (restore.event_qualifier, restore.event_type) == ("3", "100")
        wait_until(
            lambda: [n.status for n in _arc_notes(svc)] == ["delivered"] * 2,
            timeout=10,
            what="the event and its restore delivered",
        )


def test_a_centre_that_is_down_is_retried(svc: Handlers, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_several_xdata(monkeypatch)
    port = free_port()
    address = f"sia-dc09://127.0.0.1:{port}?account={ACCOUNT}&prefix={PREFIX}&timeout=1"
    _load(svc, _policy(address))
    badge, _ = svc.badge("badge-down")
    pk = _pk(svc, badge.raise_alert("red"))
    wait_until(
        lambda: any("trying again in" in t for t in _timeline(svc, pk)),
        timeout=10,
        what="the failed send retried",
    )
    with centre(port) as c:
        (event,) = c.took(1)
        assert event.event_type == "120" and event.receiver is None
        wait_until(
            lambda: [n.status for n in _arc_notes(svc)] == ["delivered"],
            timeout=10,
            what="delivered once the centre is up",
        )
    (n,) = _arc_notes(svc)
    assert n.attempts >= 2
    assert any("ARC: ConnectionRefusedError" in t for t in _timeline(svc, pk))
