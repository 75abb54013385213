"""An alert's escalation plan, "Escalate now", and timeline entries that say why a step
reached nobody: against the real store and step runner (SMS and calls to the outbox)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from escalation import flows
from escalation.models import Escalation, Notification, Step
from monitor.alerts.models import Alert, AlertEvent
from monitor.db import utcnow
from monitor.users.models import Role
from tests.escalation_support import BACKUP, CONTACTS, DUTY, WORKER_PHONE, load
from tests.fast.handlers import Handlers, fast_settings
from tests.support import wait_until

NOBODY_HERE = "A team without backup staff"


def policy(*steps: str, repeat: int = 0) -> str:
    body = "".join(f"      - {s}\n" for s in steps)
    return f"""
policies:
  - name: Plan policy
    alert_types: [red, duress]
    repeat: {repeat}
    steps:
{body}"""


def raised(svc: Handlers, prefix: str, **kw: str) -> int:
    device, _ = svc.badge(prefix, **kw)
    device_alert = device.raise_alert(type="red")
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    assert pk is not None
    return pk


def entries(svc: Handlers, pk: int, kind: str) -> list[AlertEvent]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == pk, AlertEvent.kind == kind)
                .order_by(AlertEvent.id)
            )
        )


def sent(svc: Handlers, pk: int) -> list[Notification]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(Notification).where(Notification.alert_id == pk).order_by(Notification.id)
            )
        )


def steps_of(svc: Handlers, pk: int) -> list[Step]:
    with svc.store.session() as db:
        return list(db.scalars(select(Step).where(Step.alert_id == pk).order_by(Step.position)))


def test_a_step_that_reaches_nobody_waits_its_delay_and_says_why(svc: Handlers) -> None:
    load(
        svc,
        CONTACTS
        + policy(
            "{channel: sms, to: [backup]}",
            "{after: 1.5, channel: sms, to: [Duty manager]}",
            "{after: 60, channel: sms, to: [backup]}",
            repeat=1,
        ),
    )
    pk = raised(svc, "plan-nobody", team=NOBODY_HERE)
    wait_until(lambda: len(sent(svc, pk)) == 1, timeout=5, what="the duty manager's SMS")
    first, second, third = steps_of(svc, pk)[:3]
    assert first.done_at is not None and second.done_at is not None
    # Its policy's 1.5 s, not at once as before; and the step after it waits its 60 s.
    assert second.done_at - first.done_at >= timedelta(seconds=1.4)
    assert third.state == "pending" and third.due_at - second.done_at >= timedelta(seconds=59)
    assert sent(svc, pk)[0].address == DUTY
    texts = [e.text for e in entries(svc, pk, "escalation_step")]
    assert texts[0] == ("Escalation step 1 of 3: sms reached nobody. The team has no backup staff")
    assert "nobody reachable" not in " ".join(texts)
    # The plan says so of the step to come, before it runs.
    ops = svc.user("op1", Role.OPERATOR)
    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    assert plan["steps"][2]["to"] == [] and plan["next"] == 2
    assert plan["steps"][2]["nobody"] == "The team has no backup staff"


def test_a_call_to_the_workers_phone_held_back_under_duress_says_so(svc: Handlers) -> None:
    contacts = f"""
  - name: Home phone
    phone: "{WORKER_PHONE}"
"""
    load(
        svc,
        CONTACTS
        + contacts
        + policy(
            "{channel: voice, to: [worker]}",
            "{after: 60, channel: sms, to: [Home phone, backup]}",
        ),
    )
    device, b = svc.badge("plan-duress", name="Nia Walker")
    alert_id = device.raise_alert(type="red")
    device.cancel_alert(alert_id, b.duress_pin)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == alert_id))
    assert pk is not None
    wait_until(lambda: len(entries(svc, pk, "escalation_step")) >= 3, timeout=5, what="the burst")
    # The duress round (round 2) runs every step at once.
    burst = {
        e.text.split(":")[0]: e.text
        for e in entries(svc, pk, "escalation_step")
        if ", round 2:" in e.text
    }
    held = "held back: under duress, whoever is with the worker would hear it"
    assert burst["Escalation step 1 of 2, round 2"] == (
        f"Escalation step 1 of 2, round 2: voice reached nobody. Call to Nia Walker's phone {held}"
    )
    assert burst["Escalation step 2 of 2, round 2"] == (
        f"Escalation step 2 of 2, round 2: sms to Housing backup ({BACKUP}). "
        f"SMS to Home phone ({WORKER_PHONE}) {held}"
    )
    # Only the call made before the PIN was keyed went to the worker's phone.
    assert [n.recipient_kind for n in sent(svc, pk) if n.address == WORKER_PHONE] == ["worker"]


PLAN = policy(
    "{channel: console}",
    "{after: 60, channel: sms, to: [backup]}",
    "{after: 60, channel: voice, to: [Duty manager]}",
)


def test_escalate_now_runs_the_next_step_once_audited(svc: Handlers) -> None:
    load(svc, CONTACTS + PLAN)
    ops = svc.user("op1", Role.OPERATOR)
    pk = raised(svc, "plan-now")
    wait_until(lambda: len(steps_of(svc, pk)) == 2, timeout=5, what="step 2 scheduled")

    r = svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=ops)
    assert r.status_code == 200, r.text
    wait_until(lambda: len(sent(svc, pk)) == 1, timeout=5, what="the backup's SMS")
    assert sent(svc, pk)[0].address == BACKUP
    (now,) = entries(svc, pk, "escalation_now")
    assert now.actor == "user:op1"
    assert now.text.startswith("Escalate now: step 2 of 3 (sms to Housing backup) runs at once")
    # Step 3 waits its own minute from when step 2 ran: pressing brought one step forward.
    time.sleep(0.5)
    steps = steps_of(svc, pk)
    assert [s.state for s in steps] == ["done", "done", "pending"]
    assert steps[2].due_at - (steps[1].done_at or steps[2].due_at) >= timedelta(seconds=59)
    assert len(sent(svc, pk)) == 1

    # A second press, and a third before the runner got to it: the third is refused, so
    # two operators pressing at once bring one step forward, not two.
    with svc.store.begin() as db:
        flows.escalate_now(db, pk, "user:op1")
        with pytest.raises(flows.Refused, match="already due: it is running now"):
            flows.escalate_now(db, pk, "user:op2")
    wait_until(lambda: len(sent(svc, pk)) == 2, timeout=5, what="the duty manager's call")
    assert sent(svc, pk)[1].address == DUTY

    # Nothing is next any more: refused, with the reason, and nothing written.
    r = svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=ops)
    assert r.status_code == 409
    assert r.json()["detail"] == "Nothing to escalate: every step of the policy has run"
    assert len(entries(svc, pk, "escalation_now")) == 2

    # Taken: refused, saying by whom.
    assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
    r = svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=ops)
    assert r.status_code == 409
    assert r.json()["detail"] == "Nothing to escalate: the alert was taken by op1"


def test_the_plan_shows_done_next_and_planned_steps_in_scope(svc: Handlers) -> None:
    load(svc, CONTACTS + PLAN)
    ops = svc.user("op1", Role.OPERATOR)
    pk = raised(svc, "plan-show")
    svc.badge("plan-nursing", team="Community Nursing")  # the other team, in the same org
    elsewhere = svc.user("nursing-op", Role.OPERATOR, org="Test Org", team="Community Nursing")
    wait_until(lambda: len(steps_of(svc, pk)) == 2, timeout=5, what="step 2 scheduled")

    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    assert plan["policy"] == "Plan policy" and plan["status"] == "running"
    assert plan["round_size"] == 3 and plan["more"] == 0
    assert plan["next"] == 1 and plan["can_escalate_now"] is True and plan["why"] is None
    one, two, three = plan["steps"]
    assert (one["state"], one["word"], one["result"]) == (
        "done",
        "Console",
        "Escalation step 1 of 3: operators, on the console",
    )
    assert two["state"] == "pending" and two["to"] == [{"name": "Housing backup", "kind": "backup"}]
    assert two["label"] == "step 2 of 3" and two["after_s"] == 60
    # The third is not scheduled yet: due its own minute after the second's time.
    assert three["state"] == "planned" and three["word"] == "Call"
    assert datetime.fromisoformat(three["due_at"]) - datetime.fromisoformat(
        two["due_at"]
    ) == timedelta(seconds=60)

    # Another team's operator: no such alert, as for the alert itself; nothing happens.
    assert svc.http.get(f"/api/v1/alerts/{pk}", headers=elsewhere).status_code == 404
    assert svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=elsewhere).status_code == 404
    assert svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=elsewhere).status_code == 404
    assert entries(svc, pk, "escalation_now") == []

    svc.http.post(f"/api/v1/alerts/{pk}/escalate", headers=ops)
    wait_until(lambda: len(sent(svc, pk)) == 1, timeout=5, what="the backup's SMS")
    wait_until(
        lambda: (
            svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()["steps"][1]["sends"]
            != []
        ),
        timeout=5,
        what="the SMS in the plan",
    )
    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    (sms,) = plan["steps"][1]["sends"]
    assert sms["recipient"] == "Housing backup" and sms["address"] == BACKUP
    assert plan["steps"][1]["result"].startswith("Escalation step 2 of 3: sms to Housing backup")
    assert plan["next"] == 2 and plan["steps"][2]["state"] == "pending"

    svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops)
    wait_until(
        lambda: (
            svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()["status"]
            == "stopped"
        ),
        timeout=5,
        what="the plan stopped",
    )
    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    assert plan["why"] == "the alert was taken by op1" and plan["can_escalate_now"] is False
    assert plan["steps"][2]["state"] == "cancelled" and plan["next"] is None


def test_escalate_now_on_two_replicas_at_once_runs_the_step_once(
    svc: Handlers, db_url: str, tmp_path: Path
) -> None:
    """Two services on one database, each with its step runner: operators press on both at
    the same moment, and each step brought forward runs once, on whichever replica claims it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL")
    other = Handlers(fast_settings(tmp_path / "b", db_url, secret_key=svc.settings.secret_key))
    try:
        other.start()
        load(
            svc, CONTACTS + policy("{channel: console}", "{after: 60, channel: sms, to: [backup]}")
        )
        ops = svc.user("op1", Role.OPERATOR)
        pks = [raised(svc, f"plan-replica-{i}") for i in range(4)]
        for pk in pks:
            wait_until(lambda: len(steps_of(svc, pk)) == 2, timeout=5, what="step 2 scheduled")
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda job: (
                        job[0]
                        .http.post(f"/api/v1/alerts/{job[1]}/escalate", headers=ops)
                        .status_code
                    ),
                    [(replica, pk) for pk in pks for replica in (svc, other)],
                )
            )
        for pk in pks:
            wait_until(lambda: len(sent(svc, pk)) >= 1, timeout=5, what="the backup's SMS")
        time.sleep(1.0)  # time for a second run, if the guarantee did not hold
        for i, pk in enumerate(pks):
            # One press won; the other was refused (already due, or nothing left to run).
            assert sorted(codes[2 * i : 2 * i + 2]) == [200, 409]
            assert [n.address for n in sent(svc, pk)] == [BACKUP]
            assert len(entries(svc, pk, "escalation_now")) == 1
            assert len([e for e in entries(svc, pk, "escalation_step")]) == 2
    finally:
        other.close()


def test_a_duress_raised_again_and_taken_again_stops_all_but_its_burst(svc: Handlers) -> None:
    """Raised, taken, the duress PIN (raised again: the burst, then the policy's next round),
    taken again: the escalation stops there. Everything after the burst is cancelled, its
    sends waiting for a retry too, and the timeline says who took it; the burst that went
    out at the duress still goes out to the end, its retries included, until the alert is
    closed."""
    load(
        svc,
        CONTACTS
        + policy(
            "{channel: sms, to: [backup]}",
            "{after: 60, channel: sms, to: [Duty manager]}",
            repeat=1,
        ),
    )
    ops = svc.user("op1", Role.OPERATOR)
    device, b = svc.badge("plan-retake")
    alert_id = device.raise_alert(type="red")
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == alert_id))
    assert pk is not None
    base = f"/api/v1/alerts/{pk}"

    def escalation_state() -> str:
        with svc.store.session() as db:
            esc = db.scalar(select(Escalation).where(Escalation.alert_id == pk))
            assert esc is not None
            return esc.state

    def by_position() -> dict[int, list[Notification]]:
        with svc.store.session() as db:
            rows = db.execute(
                select(Step.position, Notification)
                .join(Notification, Notification.step_id == Step.id)
                .where(Step.alert_id == pk)
                .order_by(Notification.id)
            ).all()
        found: dict[int, list[Notification]] = {}
        for position, n in rows:
            found.setdefault(position, []).append(n)
        return found

    def waiting_for_a_retry(*ids: int, due: datetime) -> None:
        """What a send that failed and waits to be tried again looks like (the fast tier's
        outbox never fails)."""
        with svc.store.begin() as db:
            for n in db.scalars(select(Notification).where(Notification.id.in_(ids))):
                n.status, n.next_attempt_at, n.lease_until = "pending", due, None

    wait_until(lambda: len(sent(svc, pk)) == 1, timeout=5, what="the first SMS")
    assert svc.http.post(f"{base}/acknowledge", headers=ops).status_code == 200
    wait_until(lambda: escalation_state() == "acknowledged", timeout=5, what="the first stop")

    device.cancel_alert(alert_id, b.duress_pin)  # raised again
    # The burst (round 2, positions 2 and 3) at once, then round 3 climbs: its first step
    # (position 4) at once, its second (5) in a minute.
    wait_until(lambda: 4 in by_position(), timeout=5, what="the round after the burst")
    wait_until(
        lambda: all(n.status == "outbox" for ns in by_position().values() for n in ns),
        timeout=5,
        what="every send made",
    )
    assert [(s.position, s.state) for s in steps_of(svc, pk)] == [
        (0, "done"),
        (1, "cancelled"),
        (2, "done"),
        (3, "done"),
        (4, "done"),
        (5, "pending"),
    ]
    sends = by_position()
    (burst_sms,), (after_burst_sms,) = sends[2], sends[4]
    later = utcnow() + timedelta(hours=1)
    waiting_for_a_retry(burst_sms.id, after_burst_sms.id, due=later)
    made = len(sent(svc, pk))

    # Someone takes charge of the duress: the escalation stops, the burst aside.
    two = svc.user("op-two")
    assert svc.http.post(f"{base}/acknowledge", headers=two).status_code == 200
    wait_until(lambda: escalation_state() == "acknowledged", timeout=5, what="the second stop")
    assert [(s.position, s.state) for s in steps_of(svc, pk)][-1] == (5, "cancelled")
    status = {n.id: n.status for n in sent(svc, pk)}
    assert status[after_burst_sms.id] == "cancelled"
    assert status[burst_sms.id] == "pending"  # the burst's retry is still to go
    stopped = [e.text for e in entries(svc, pk, "escalation_stopped")]
    assert stopped[-1] == (
        "Escalation stopped: alert taken by op-two (1 notification not sent); "
        "the duress burst already under way still goes out"
    )
    # Once for each take, each after it.
    taken = [e.id for e in entries(svc, pk, "acknowledged")]
    ends = [e.id for e in entries(svc, pk, "escalation_stopped")]
    assert len(taken) == len(ends) == 2 and taken[0] < ends[0] < taken[1] < ends[1]
    plan = svc.http.get(f"{base}/escalation", headers=ops).json()
    assert plan["status"] == "stopped" and plan["why"] == "the alert was taken by op-two"
    assert plan["steps"][5]["state"] == "cancelled"

    # The burst's retry goes out when due; nothing else does, and nothing new is made.
    waiting_for_a_retry(burst_sms.id, due=utcnow())
    wait_until(
        lambda: {n.id: n.status for n in sent(svc, pk)}[burst_sms.id] == "outbox",
        timeout=5,
        what="the burst's retry",
    )
    time.sleep(0.5)
    assert len(sent(svc, pk)) == made
    assert {n.id: n.status for n in sent(svc, pk)}[after_burst_sms.id] == "cancelled"
    assert len(entries(svc, pk, "escalation_step")) == 4  # positions 0, 2, 3 and 4 ran

    # Closed: what was left of the burst is not sent either, and the escalation ends.
    waiting_for_a_retry(burst_sms.id, due=later)
    body = {"outcome": "genuine_emergency", "note": "Police attended"}
    assert svc.http.post(f"{base}/resolve", headers=two, json=body).status_code == 200
    wait_until(lambda: escalation_state() == "ended", timeout=5, what="the end")
    assert {n.id: n.status for n in sent(svc, pk)}[burst_sms.id] == "cancelled"
    assert entries(svc, pk, "escalation_stopped")[-1].text == (
        "Escalation stopped: alert resolved (1 notification not sent)"
    )
