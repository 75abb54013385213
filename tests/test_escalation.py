"""Escalation end to end: a badge's alert walks its policy through the real twilio library to a
local fake of Twilio's API, and stops when a person takes charge."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from escalation.delivery import FRESH_S, needs_last_look
from escalation.models import Escalation, Notification, Step
from escalation.providers import Outgoing
from monitor.alerts.models import Alert
from tests.escalation_support import (
    BACKUP,
    CONTACTS,
    DISPATCH,
    DUTY,
    PUBLIC_URL,
    WORKER_PHONE,
    alert_pk,
    alert_state,
    escalating,
    gather_path,
    load,
    new_sid,
    notification_to,
    notifications,
    signed_post,
    timeline,
)
from tests.fake_twilio import FakeTwilio, Request
from tests.support import Broker, Running, wait_until


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


def policy(*steps: str, repeat: int = 0, types: str = "[red, man_down, duress]") -> str:
    body = "".join(f"      - {s}\n" for s in steps)
    return f"""
policies:
  - name: Test policy
    alert_types: {types}
    repeat: {repeat}
    steps:
{body}"""


def held_back(
    sent: Callable[[], list[Request]], raised: float, due_s: float, answered: float
) -> None:
    """The step due `due_s` after the alert was held back by the answer: past its due time,
    nothing was sent when the answer came before it was due (as it does unless the machine
    is loaded: fresh-clone runs have taken longer); else the step may have gone as the
    answer came, and nothing after it."""
    time.sleep(max(0.0, raised + due_s + 0.5 - time.monotonic()))
    if answered < raised + due_s:
        assert sent() == []
    else:
        assert all(r.at < answered + 1 for r in sent())


WALK = policy(
    "{channel: console}",
    "{channel: sms, to: [backup]}",
    "{after: 1, channel: voice, to: [Duty manager]}",
    "{after: 1, channel: dispatch, to: [Emergency dispatch]}",
)


def test_a_red_alert_walks_every_step_on_time_when_nobody_answers(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    with escalating(tmp_path, db_url, mqtt_broker, fake, WALK) as svc:
        badge, _ = svc.badge("badge-e1", name="Nia Patel")
        raised = time.monotonic()
        alert_id = badge.raise_alert(type="red")
        sms = fake.wait_for_count("sms", 1)[0]
        duty = fake.wait_for_count("call", 1, to=DUTY)[0]
        dispatch = fake.wait_for_count("call", 1, to=DISPATCH)[0]
        pk = alert_pk(svc, alert_id)

        # The SMS goes at once; each call waits its step's delay after the step before.
        assert sms.to == BACKUP and sms.at - raised < 2.0
        assert sms.at < duty.at < dispatch.at
        with svc.store.session() as db:
            done = [s.done_at for s in db.scalars(select(Step).order_by(Step.position))]
        assert len(done) == 4 and all(done)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(done)]  # type: ignore[operator]
        assert gaps[0] < 0.5 and all(1.0 <= g < 2.5 for g in gaps[1:]), gaps
        body = sms.param("Body") or ""
        assert "RED ALERT" in body and "Nia Patel (Housing)" in body
        assert f"{PUBLIC_URL}/#alert={pk}" in body and "Reply 1" in body
        assert sms.param("StatusCallback") == f"{PUBLIC_URL}/twilio/status/" + str(
            notification_to(svc, pk, BACKUP).id
        )
        twiml = duty.param("Twiml") or ""
        assert "<Gather" in twiml and "Press 1" in twiml and "Nia Patel" in twiml
        assert "reporting an emergency" in (dispatch.param("Twiml") or "")
        assert set(duty.params["StatusCallbackEvent"]) >= {"initiated", "completed"}

        # Nothing more is sent: the policy has run out, and the timeline says so.
        wait_until(
            lambda: any(e.kind == "escalation_exhausted" for e in timeline(svc, pk)),
            what="the policy exhausted",
        )
        time.sleep(1.0)
        assert len(fake.messages) == 1 and len(fake.calls) == 2
        texts = [e.text for e in timeline(svc, pk)]
        assert any("step 1 of 4: operators" in t for t in texts)
        assert any(t.startswith("Escalation step 2 of 4: sms to Housing backup") for t in texts)
        assert any(t.startswith("SMS to Housing backup") and "queued" in t for t in texts)
        assert [n.status for n in notifications(svc, pk)] == ["queued"] * 3
        assert alert_state(svc, pk).state == "raised"


def test_pressing_1_on_the_call_acknowledges_and_stops_the_escalation(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    # The SMS 5 s on: time for the call and both key presses, most of the time.
    steps = policy("{channel: voice, to: [Duty manager]}", "{after: 5, channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e2")
        raised = time.monotonic()
        alert_id = badge.raise_alert(type="red")
        fake.wait_for_count("call", 1, to=DUTY)
        pk = alert_pk(svc, alert_id)
        n = notification_to(svc, pk, DUTY)
        twiml = fake.calls[0].param("Twiml")
        assert twiml is not None
        path = gather_path(twiml)  # where Twilio posts the key pressed
        assert path.startswith(f"/twilio/voice/{n.id}/gather?g=")

        again = signed_post(svc, path, {"Digits": "2", "CallSid": "CA1"})
        assert again.status_code == 200 and "<Gather" in again.text  # 2 = hear it again
        path = gather_path(again.text)
        taken = signed_post(svc, path, {"Digits": "1", "CallSid": "CA1"})
        acked = time.monotonic()
        assert taken.status_code == 200 and "Thank you" in taken.text

        badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
        alert = alert_state(svc, pk)
        assert alert.state == "acknowledged" and alert.acknowledged_by == f"Duty manager ({DUTY})"
        held_back(lambda: fake.messages, raised, 5, acked)
        kinds = [e.kind for e in timeline(svc, pk)]
        assert kinds.count("keypress") == 2 and "escalation_stopped" in kinds
        # That request again (a replay) is refused; a press on another call, later, is
        # thanked but changes nothing.
        assert signed_post(svc, path, {"Digits": "1", "CallSid": "CA1"}).status_code == 409
        late = signed_post(svc, gather_path(twiml), {"Digits": "1", "CallSid": "CA2"})
        assert "already being handled by Duty manager" in late.text
        assert [e.kind for e in timeline(svc, pk)].count("keypress") == 3


def test_an_sms_reply_acknowledges_the_latest_alert_sent_to_that_number(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    # The call 5 s on: time for the reply to be taken on a loaded machine before it is due.
    steps = policy("{channel: sms, to: [backup]}", "{after: 5, channel: voice, to: [Duty manager]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e3")
        raised = time.monotonic()
        alert_id = badge.raise_alert(type="red")
        fake.wait_for_count("sms", 1)
        pk = alert_pk(svc, alert_id)
        notification_to(svc, pk, BACKUP)

        other = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": "on my way?"})
        assert other.status_code == 200 and "reply 1, ACK or YES" in other.text
        assert alert_state(svc, pk).state == "raised"
        ack = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": " ack "})
        acked = time.monotonic()
        assert ack.status_code == 200 and "you are handling alert" in ack.text

        badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
        alert = alert_state(svc, pk)
        assert alert.state == "acknowledged" and alert.acknowledged_by.startswith("Housing backup")
        held_back(lambda: fake.calls, raised, 5, acked)
        assert [e.kind for e in timeline(svc, pk)].count("sms_reply") == 2


def test_a_replayed_sms_reply_is_refused_and_takes_no_newer_alert(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    with escalating(
        tmp_path, db_url, mqtt_broker, fake, policy("{channel: sms, to: [backup]}")
    ) as svc:
        badge, _ = svc.badge("badge-replay")
        first_id = badge.raise_alert(type="red")
        first = alert_pk(svc, first_id)
        notification_to(svc, first, BACKUP)
        reply = {"From": BACKUP, "Body": "ACK", "MessageSid": new_sid("SM")}
        assert "you are handling alert" in signed_post(svc, "/twilio/sms", reply).text
        badge.wait_for("alert_acknowledged", alert_id=first_id, timeout=10)

        # A newer alert is texted to the same number; someone who kept the signed request
        # posts it again.
        second = alert_pk(svc, badge.raise_alert(type="red"))
        notification_to(svc, second, BACKUP)
        replay = signed_post(svc, "/twilio/sms", reply)
        assert replay.status_code == 409 and "replay" in replay.json()["detail"]
        assert alert_state(svc, second).state == "raised"
        assert "sms_reply" not in [e.kind for e in timeline(svc, second)]
        # What was seen is in the store, not in memory: a restarted service refuses it too.
        svc.restart()
        assert signed_post(svc, "/twilio/sms", reply).status_code == 409
        assert alert_state(svc, second).state == "raised"
        # A reply of its own (a new MessageSid) takes the alert.
        ack = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": "ACK"})
        assert f"you are handling alert #{second}" in ack.text


def test_an_operator_taking_charge_cancels_the_remaining_steps(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy("{channel: console}", "{after: 2, channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        ops = svc.user("op-e4")
        badge, _ = svc.badge("badge-e4")
        raised = time.monotonic()
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        wait_until(
            lambda: any(e.kind == "escalation_step" for e in timeline(svc, pk)),
            what="the console step",
        )
        assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
        held_back(lambda: fake.requests, raised, 2, time.monotonic())
        with svc.store.session() as db:
            esc = db.scalar(select(Escalation).where(Escalation.alert_id == pk))
            assert esc is not None and esc.state == "acknowledged"


def test_a_restart_in_the_middle_neither_skips_nor_repeats_a_step(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy(
        "{channel: sms, to: [backup]}",
        "{after: 2, channel: sms, to: [Duty manager]}",
        "{after: 2, channel: sms, to: [Emergency dispatch]}",
    )
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e5")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        fake.wait_for_count("sms", 1, to=BACKUP)
        wait_until(
            lambda: notification_to(svc, pk, BACKUP).status == "queued",
            what="the first SMS recorded",
        )
        svc.stop()
        time.sleep(3.0)  # the second step falls due while the service is down
        assert len(fake.messages) == 1
        svc.restart()
        fake.wait_for_count("sms", 1, to=DUTY)
        fake.wait_for_count("sms", 1, timeout=6, to=DISPATCH)
        time.sleep(1.0)
        assert sorted(m.to or "" for m in fake.messages) == sorted([BACKUP, DUTY, DISPATCH])
        assert len(notifications(svc, pk)) == 3


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_on_one_postgresql_send_each_notification_once(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy(
        "{channel: sms, to: [backup, Emergency dispatch]}",
        "{after: 0.5, channel: voice, to: [Duty manager]}",
    )
    with (
        escalating(tmp_path, db_url, mqtt_broker, fake, steps, name="a") as a,
        escalating(
            tmp_path,
            db_url,
            mqtt_broker,
            fake,
            steps,
            name="b",
            secret_key=a.settings.secret_key,
        ),
    ):
        badges = a.badges("badge-e6", 5)
        for badge, _ in badges:
            badge.raise_alert(type="red")
        fake.wait_for_count("sms", 10, timeout=10)
        fake.wait_for_count("call", 5, timeout=10)
        time.sleep(2.0)  # time for any duplicate to show itself
        assert len(fake.messages) == 10 and len(fake.calls) == 5
        assert sorted(m.to or "" for m in fake.messages) == sorted([BACKUP, DISPATCH] * 5)
        with a.store.session() as db:
            assert db.scalar(select(func.count()).select_from(Notification)) == 15
            assert db.scalar(select(func.count()).select_from(Escalation)) == 5


def test_a_failing_or_hanging_twilio_does_not_delay_other_alerts(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    slow, broken = "+15005550201", "+15005550202"
    contacts = f"""
  - name: Slow backup
    phone: "{slow}"
    backup_for: [Slow team]
  - name: Broken backup
    phone: "{broken}"
    backup_for: [Broken team]
"""
    steps = policy("{channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps, contacts=contacts) as svc:
        fake.hang(slow, 5.0)  # longer than twilio_timeout_s (2 s) in tests
        fake.fail(broken, status=500, times=2)
        stuck, _ = svc.badge("badge-e7a", team="Slow team")
        flaky, _ = svc.badge("badge-e7b", team="Broken team")
        fine, _ = svc.badge("badge-e7c")
        stuck_pk = alert_pk(svc, stuck.raise_alert(type="red"))
        flaky_pk = alert_pk(svc, flaky.raise_alert(type="red"))
        fake.wait_for_count("sms", 1, to=slow)
        started = time.monotonic()
        fine.raise_alert(type="red")
        ok = fake.wait_for_count("sms", 1, to=BACKUP, answered=True)[0]
        # Answered while the slow number's request is still hanging.
        assert ok.at - started < 1.5

        # The 500s are retried with backoff until Twilio takes the message.
        wait_until(
            lambda: notification_to(svc, flaky_pk, broken).status == "queued",
            timeout=10,
            what="the SMS sent on the third try",
        )
        assert notification_to(svc, flaky_pk, broken).attempts == 3
        retries = [e.text for e in timeline(svc, flaky_pk) if "trying again" in e.text]
        assert len(retries) == 2 and "500" in retries[0]
        # The hanging request timed out and was tried again.
        wait_until(
            lambda: notification_to(svc, stuck_pk, slow).attempts >= 2,
            timeout=10,
            what="the hung SMS retried",
        )
        assert "Twilio unreachable" in (notification_to(svc, stuck_pk, slow).error or "")


def test_an_alert_is_escalated_at_once_while_another_alerts_step_waits(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    """A new alert's first SMS waits for no other alert's steps, however long those take:
    here the first alert's second step waits for its alert's row, locked from outside."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a row lock held from outside the service needs PostgreSQL")
    steps = policy("{channel: sms, to: [backup]}", "{after: 1, channel: sms, to: [Duty manager]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        first, _ = svc.badge("badge-e10a")
        second, _ = svc.badge("badge-e10b")
        pk = alert_pk(svc, first.raise_alert(type="red"))
        # Its SMS recorded, so that nothing but the next step will wait for its row.
        wait_until(
            lambda: notification_to(svc, pk, BACKUP).status == "queued",
            what="the first SMS recorded",
        )
        with svc.store.begin() as db:
            db.execute(select(Alert.id).where(Alert.id == pk).with_for_update())
            # Its second step falls due, and the engine's tick waits for the row.
            wait_until(
                lambda: waiting_for_a_lock(svc),
                timeout=10,
                what="the tick waiting for the first alert's row",
            )
            second.raise_alert(type="red")
            fake.wait_for_count("sms", 2, to=BACKUP)
            assert not [m for m in fake.messages if m.to == DUTY]
        fake.wait_for_count("sms", 1, to=DUTY)


def waiting_for_a_lock(svc: Running) -> bool:
    """Whether one of the service's transactions waits for a row lock (PostgreSQL)."""
    with svc.store.session() as db:
        waiting = db.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def test_the_tick_and_the_new_alerts_thread_never_start_one_alert_both(
    db_url: str,
    mqtt_broker: Broker,
    tmp_path: Path,
    fake: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a tick every 2 ms, the tick finds most new alerts while the thread for them is
    starting them. Had both tried, the second would have waited for the first's lock and
    then been refused by the database as if another replica had started it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's one writer lets the second look see the first start")
    caplog.set_level(logging.INFO, logger="escalation")
    steps = policy("{channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps, escalation_tick_s=0.002) as svc:
        badges = [svc.badge(f"badge-e11-{i}")[0] for i in range(20)]
        for badge in badges:
            badge.raise_alert(type="red")
            time.sleep(0.05)
        fake.wait_for_count("sms", 20, timeout=20, to=BACKUP)
        time.sleep(0.5)  # a second start, had there been one, is over by now
        assert len(fake.messages) == 20
        with svc.store.session() as db:
            assert db.scalar(select(func.count()).select_from(Escalation)) == 20
    refused = [r.getMessage() for r in caplog.records if "another replica" in r.getMessage()]
    assert not refused


def test_each_step_tells_where_the_worker_is_now_with_a_later_fix_s_time(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    """A phone indoors has no fix at the press, and one a few seconds later: the next step
    gives the fix that came since, with the time it was taken. An alert that came with its
    fix gives it, with no time."""
    steps = policy("{channel: sms, to: [backup]}", "{after: 60, channel: sms, to: [Duty manager]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        op = svc.user("op1")
        badge, _ = svc.badge("badge-e13")
        badge.position = (51.50100, -0.12100)
        pk = alert_pk(svc, badge.raise_alert(type="red", located=False))
        # The service asks the badge for a fix (locate), and the badge answers at once: the
        # first SMS goes before or after that answer is stored.
        first = fake.wait_for_count("sms", 1, to=BACKUP)[0].param("Body") or ""
        assert "position not known yet" in first or "51.50100,-0.12100 ±5m at " in first, first

        badge.send_location(51.50720, -0.12760, acc=8.0, qos=1)

        def moved() -> Any:
            p = svc.http.get(f"/api/v1/alerts/{pk}", headers=op).json()["position"]
            return p if p is not None and p["lat"] == 51.5072 else None

        fixed = wait_until(moved, what="the fix after the alert")
        assert svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=op).status_code == 200
        body = fake.wait_for_count("sms", 1, to=DUTY)[0].param("Body") or ""
        at = fixed["at"][11:19]  # the fix's time of day, UTC, as the device took it
        assert f"51.50720,-0.12760 ±8m at {at}" in body, body

        # With its own fix, the alert's position is told as it came.
        other, _ = svc.badge("badge-e14")
        other.position = (51.51000, -0.13000)
        other.raise_alert(type="red")
        sms = fake.wait_for_count("sms", 2, to=BACKUP)[1]
        assert "51.51000,-0.13000 ±5m." in (sms.param("Body") or "")


def test_a_refused_number_or_a_busy_line_goes_on_to_the_next_step_at_once(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    second = "+15005550103"
    steps = policy(
        "{channel: voice, to: [Duty manager]}",
        "{after: 60, channel: sms, to: [backup, Housing backup 2]}",
        "{after: 60, channel: sms, to: [Emergency dispatch]}",
    )
    contacts = f"""
  - name: Housing backup 2
    phone: "{second}"
"""
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps, contacts=contacts) as svc:
        # Twilio: not a valid phone number. Both SMS of the second step fail at once, on
        # two sending threads: together they mean nobody at that step can answer.
        fake.fail(BACKUP, status=400, code=21211)
        fake.fail(second, status=400, code=21211)
        badge, _ = svc.badge("badge-e8")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        fake.wait_for_count("call", 1, to=DUTY)
        n = notification_to(svc, pk, DUTY)
        wait_until(lambda: notification_to(svc, pk, DUTY).status == "queued")
        for status in ("ringing", "busy"):
            r = signed_post(svc, f"/twilio/status/{n.id}", {"CallSid": "CA1", "CallStatus": status})
            assert r.status_code == 204
        again = {"CallSid": "CA1", "CallStatus": "ringing"}
        assert signed_post(svc, f"/twilio/status/{n.id}", again).status_code == 409  # a replay
        # Busy: the SMS step runs now, not in 60 s; Twilio refuses both numbers (400, not
        # retried), so the dispatch SMS follows at once too.
        fake.wait_for_count("sms", 1, to=BACKUP)
        fake.wait_for_count("sms", 1, to=second)
        fake.wait_for_count("sms", 1, to=DISPATCH)
        refused = notification_to(svc, pk, BACKUP)
        assert refused.status == "failed" and refused.attempts == 1
        assert notification_to(svc, pk, DUTY).status == "busy"
        texts = [e.text for e in timeline(svc, pk)]
        assert any(t.endswith(": ringing") for t in texts) and any(
            t.endswith(": busy") for t in texts
        )
        assert sum("going on now" in t for t in texts) == 2


def test_duress_escalates_at_the_top_at_once_and_never_contacts_the_worker(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy(
        "{channel: console}",
        "{after: 30, channel: voice, to: [worker]}",
        "{after: 30, channel: sms, to: [backup]}",
        "{after: 60, channel: dispatch, to: [Emergency dispatch]}",
    )
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, b = svc.badge("badge-e9")
        alert_id = badge.raise_alert(type="red")
        badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
        pk = alert_pk(svc, alert_id)
        badge.cancel_alert(alert_id, b.duress_pin)
        badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
        # Every level now: backup staff and dispatch, without waiting out 2 minutes (the
        # first step is 30 s away; 15 s allows for a loaded machine's reconnecting service).
        fake.wait_for_count("sms", 1, to=BACKUP)
        fake.wait_for_count("call", 1, to=DISPATCH)
        time.sleep(1.0)
        assert all(r.to != WORKER_PHONE for r in fake.requests)
        assert "escalation_duress" in [e.kind for e in timeline(svc, pk)]
        # The device hears nothing after its "cancelled", whatever the escalation does.
        before = len(badge.commands)
        n = notification_to(svc, pk, DISPATCH)
        signed_post(svc, f"/twilio/voice/{n.id}/gather", {"Digits": "1", "CallSid": "CA9"})
        assert alert_state(svc, pk).state == "acknowledged"
        time.sleep(1.0)
        assert [c.type for c in badge.commands[before:]] == []


def test_a_test_alert_reaches_operators_only(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy("{channel: sms, to: [backup]}", types="[]")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e10")
        pk = alert_pk(svc, badge.raise_alert(type="test"))
        wait_until(
            lambda: any(e.kind == "escalation_step" for e in timeline(svc, pk)),
            what="the console step",
        )
        time.sleep(1.0)
        assert fake.requests == []
        assert "test alert goes to operators only" in timeline(svc, pk)[1].text


def test_a_running_escalation_keeps_the_policy_it_started_with(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy("{channel: console}", "{after: 1.5, channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e11")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        wait_until(lambda: any(e.kind == "escalation_step" for e in timeline(svc, pk)))
        # Edited mid-way: SMS the duty manager instead. This alert still texts the backup.
        load(
            svc,
            CONTACTS
            + policy("{channel: console}", "{after: 1.5, channel: sms, to: [Duty manager]}"),
        )
        assert fake.wait_for_count("sms", 1)[0].to == BACKUP
        later = alert_pk(svc, badge.raise_alert(type="red"))
        assert later != pk
        assert fake.wait_for_count("sms", 1, to=DUTY)


def test_without_twilio_notifications_go_to_the_outbox(
    db_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    steps = policy("{channel: sms, to: [backup]}", "{channel: voice, to: [Duty manager]}")
    with escalating(tmp_path, db_url, mqtt_broker, None, steps) as svc:
        ops = svc.user("op-e12")
        badge, _ = svc.badge("badge-e12", name="Omar Said")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        wait_until(
            lambda: len(svc.http.get("/api/v1/escalation/outbox", headers=ops).json()) == 2,
            what="two notifications in the outbox",
        )
        box = svc.http.get("/api/v1/escalation/outbox", headers=ops).json()
        assert {n["address"] for n in box} == {BACKUP, DUTY}
        assert all(n["status"] == "outbox" for n in box)
        sms = next(n for n in box if n["channel"] == "sms")
        assert "Omar Said" in sms["body"]
        detail = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
        assert any("kept in the outbox" in e["text"] for e in detail["timeline"])
        listed = svc.http.get(f"/api/v1/escalation/alerts/{pk}/notifications", headers=ops)
        assert len(listed.json()) == 2


def test_unsigned_or_wrongly_signed_webhooks_get_403_and_change_nothing(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy("{channel: voice, to: [Duty manager]}", "{channel: sms, to: [backup]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e13")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        fake.wait_for_count("call", 1)
        fake.wait_for_count("sms", 1)
        call = notification_to(svc, pk, DUTY)
        wait_until(
            lambda: [n.status for n in notifications(svc, pk)] == ["queued", "queued"],
            what="both sends recorded",
        )
        before = len(timeline(svc, pk))
        attempts = [
            (f"/twilio/voice/{call.id}/gather", {"Digits": "1"}),
            (f"/twilio/status/{call.id}", {"CallStatus": "busy"}),
            ("/twilio/sms", {"From": BACKUP, "Body": "YES"}),
        ]
        for path, params in attempts:
            assert svc.http.post(path, data=params).status_code == 403  # no signature
            wrong = signed_post(svc, path, params, signature="bm90IGEgc2lnbmF0dXJl")
            assert wrong.status_code == 403
            # Signed over other parameters than those posted.
            other = RequestValidator(svc.settings.twilio_auth_token).compute_signature(
                PUBLIC_URL + path, {**params, "Digits": "2", "Body": "no"}
            )
            assert signed_post(svc, path, params, signature=other).status_code == 403
        assert alert_state(svc, pk).state == "raised"
        assert notification_to(svc, pk, DUTY).status == "queued"
        assert len(timeline(svc, pk)) == before


def test_a_send_cut_short_by_a_crash_goes_out_again_at_restart(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    with escalating(
        tmp_path, db_url, mqtt_broker, fake, policy("{channel: sms, to: [backup]}")
    ) as svc:
        badge, _ = svc.badge("badge-e14")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        fake.wait_for_count("sms", 1)
        wait_until(lambda: notification_to(svc, pk, BACKUP).status == "queued")
        svc.stop()
        # As a process killed while Twilio was answering leaves it: claimed, lease running.
        with svc.store.begin() as db:
            n = db.get(Notification, notification_to(svc, pk, BACKUP).id)
            assert n is not None
            n.status, n.claimed_by = "claimed", svc.settings.mqtt_node
            n.lease_until = n.updated_at + timedelta(hours=1)
        fake.reset()
        svc.restart()
        # Sent again at once, not an hour later when the lease would have run out.
        assert fake.wait_for_count("sms", 1)[0].to == BACKUP
        wait_until(lambda: notification_to(svc, pk, BACKUP).status == "queued")
        assert notification_to(svc, pk, BACKUP).attempts == 2


def test_a_step_that_reaches_nobody_waits_its_delay_like_any_other(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    # It used to go on at once: with repeats, the same person got every round in seconds.
    steps = policy("{channel: sms, to: [backup]}", "{after: 1.5, channel: sms, to: [Duty manager]}")
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        badge, _ = svc.badge("badge-e15", team="A team without backup staff")
        raised = time.monotonic()
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        sms = fake.wait_for_count("sms", 1)[0]
        assert sms.to == DUTY and sms.at - raised >= 1.4
        assert any(
            e.text == "Escalation step 1 of 2: sms reached nobody. The team has no backup staff"
            for e in timeline(svc, pk)
        )


def test_under_duress_nothing_reaches_the_workers_phone_in_flight_retried_or_otherwise(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy(
        "{channel: voice, to: [worker]}",
        "{channel: sms, to: [worker]}",
        "{after: 30, channel: sms, to: [backup]}",
        "{after: 60, channel: dispatch, to: [Emergency dispatch]}",
    )
    # Someone on the worker's own phone is also listed as backup staff for the team.
    partner = f"""
  - name: Worker's partner
    phone: "{WORKER_PHONE}"
    backup_for: [Housing]
"""
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps, contacts=partner) as svc:
        fake.fail(WORKER_PHONE, status=500, kind="call")  # the call keeps being retried
        badge, b = svc.badge("badge-e16")
        first = badge.raise_alert(type="red")
        # (The set-up's waits are long: a loaded fresh-clone run saw no call in 5 s.)
        fake.wait_for_count("call", 2, to=WORKER_PHONE)  # a try, and a retry
        fake.wait_for_count("sms", 1, to=WORKER_PHONE)
        first_pk = alert_pk(svc, first)
        second = badge.raise_alert(type="red")
        second_pk = alert_pk(svc, second)
        badge.wait_for("alert_received", alert_id=second, timeout=10)

        # The worker keys the duress PIN on the second alert.
        badge.cancel_alert(second, b.duress_pin)
        badge.wait_for("alert_cancelled", alert_id=second, timeout=10)
        wait_until(
            lambda: "escalation_duress" in [e.kind for e in timeline(svc, second_pk)],
            what="the duress burst",
        )
        seen = len([r for r in fake.requests if r.to == WORKER_PHONE])
        fake.wait_for_count("sms", 1, to=BACKUP)
        fake.wait_for_count("call", 1, to=DISPATCH)
        time.sleep(2.0)  # retries of the first alert's call would have come by now
        assert len([r for r in fake.requests if r.to == WORKER_PHONE]) == seen
        assert all(n.status != "pending" for n in notifications(svc, first_pk))

        # A reply from the worker's phone is not answered and takes nothing.
        r = signed_post(svc, "/twilio/sms", {"From": WORKER_PHONE, "Body": "1"})
        assert r.status_code == 200 and "<Message>" not in r.text
        assert alert_state(svc, first_pk).state == "raised"
        assert alert_state(svc, second_pk).state == "raised"


def test_duress_after_someone_took_the_alert_still_notifies_every_level(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    steps = policy(
        "{channel: console}",
        "{after: 30, channel: sms, to: [backup]}",
        "{after: 60, channel: dispatch, to: [Emergency dispatch]}",
    )
    with escalating(tmp_path, db_url, mqtt_broker, fake, steps) as svc:
        ops = svc.user("op-e17")
        badge, b = svc.badge("badge-e17")
        alert_id = badge.raise_alert(type="red")
        pk = alert_pk(svc, alert_id)
        assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
        wait_until(lambda: "escalation_stopped" in [e.kind for e in timeline(svc, pk)])
        badge.cancel_alert(alert_id, b.duress_pin)
        fake.wait_for_count("sms", 1, to=BACKUP)
        fake.wait_for_count("call", 1, to=DISPATCH)
        # The burst runs once, and is this policy's last round (it has no repeats; with them,
        # the duress having raised the alert again, they would follow until someone took it).
        time.sleep(1.0)
        assert len(fake.requests) == 2


RETRY_S = 4.0


def test_an_operator_taking_charge_cancels_a_retry_already_scheduled(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    with escalating(
        tmp_path,
        db_url,
        mqtt_broker,
        fake,
        policy("{channel: sms, to: [backup]}"),
        escalation_retry_base_s=RETRY_S,
    ) as svc:
        ops = svc.user("op-e18")
        fake.fail(BACKUP, status=503)
        badge, _ = svc.badge("badge-e18")
        pk = alert_pk(svc, badge.raise_alert(type="red"))
        fake.wait_for_count("sms", 1, to=BACKUP)
        failed_at = fake.requests[0].at
        wait_until(lambda: notification_to(svc, pk, BACKUP).status == "pending")
        assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
        wait_until(lambda: notification_to(svc, pk, BACKUP).status == "cancelled")
        # The operator took charge before the retry was due (with a margin a loaded machine
        # needs: at 1.5 s the suite once acknowledged after it), and it never goes out.
        assert time.monotonic() < failed_at + RETRY_S
        time.sleep(max(0.0, failed_at + RETRY_S + 0.5 - time.monotonic()))
        assert len(fake.requests) == 1


def test_an_sms_reply_can_name_the_alert_it_takes(
    db_url: str, mqtt_broker: Broker, tmp_path: Path, fake: FakeTwilio
) -> None:
    with escalating(
        tmp_path, db_url, mqtt_broker, fake, policy("{channel: sms, to: [backup]}")
    ) as svc:
        one, _ = svc.badge("badge-e19a")
        two, _ = svc.badge("badge-e19b")
        first = alert_pk(svc, one.raise_alert(type="red"))
        fake.wait_for_count("sms", 1)
        second = alert_pk(svc, two.raise_alert(type="red"))
        fake.wait_for_count("sms", 2)
        notification_to(svc, second, BACKUP)

        r = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": f"ack {first}"})
        assert f"you are handling alert #{first}" in r.text and f"#{second}" in r.text
        assert alert_state(svc, first).state == "acknowledged"
        assert alert_state(svc, second).state == "raised"
        # A bare "YES" takes the latest alert still waiting, not a taken one.
        r = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": "YES"})
        assert f"you are handling alert #{second}" in r.text
        r = signed_post(svc, "/twilio/sms", {"From": BACKUP, "Body": "yes"})
        assert f"Alert #{second} is already acknowledged by Housing backup" in r.text


def test_only_a_fresh_claim_not_for_the_workers_phone_goes_without_a_last_look() -> None:
    """The sender looks at a notification again before it goes (claimed again elsewhere, the
    lease run out, duress) unless the claim that made it found it fit a moment ago: inside
    the lease nobody else can claim it, and duress silences only the worker's phone, whose
    sends the claim never stamps."""
    now = time.monotonic()
    fresh = Outgoing(1, 1, "sms", BACKUP, "VIGIL RED ALERT", 1, checked_at=now)
    assert not needs_last_look(fresh)
    assert needs_last_look(Outgoing(1, 1, "sms", WORKER_PHONE, "Vigil: ...", 1))
    assert needs_last_look(Outgoing(1, 1, "sms", BACKUP, "...", 1, checked_at=now - FRESH_S - 1))
