"""The escalation policy file in the browser's API: a save refused exactly as `vigil policy
check` refuses, and then nothing changed; a good save is what the engine uses next; the
preview agrees with the plan of real alerts; who may do what; every save audited."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from escalation import policies
from escalation.preview import STAND_IN
from monitor.alerts.models import Alert
from monitor.audit.models import AuditEntry
from monitor.users.models import Role
from tests.escalation_support import BACKUP, CONTACTS, DUTY, load
from tests.fast.handlers import Handlers
from tests.support import add_badge, wait_until

FILE = "/api/v1/escalation/file"

POLICIES = """
policies:
  - name: Panic
    alert_types: [red, duress]
    repeat: 1
    steps:
      - channel: console
      - channel: voice
        to: [worker]
      - after: 60
        channel: sms
        to: [backup]
      - after: 2m
        channel: voice
        to: [backup, Duty manager]
  - name: Tests
    alert_types: [test]
    steps:
      - channel: console
      - channel: sms
        to: [Duty manager]
"""

# Each is refused by `vigil policy check`; the API must say the same, word for word.
BAD = {
    "duration": POLICIES.replace("after: 2m", "after: soon"),
    "recipient": POLICIES.replace("to: [Duty manager]\n", "to: [Night manager]\n"),
    "channel": POLICIES.replace(
        "channel: console\n      - channel: sms", "channel: pager\n      - channel: sms"
    ),
    "yaml": "policies: [\n",
    "nested too deeply": "policies: " + "[" * 5000,
    "duplicate": POLICIES + "  - name: Panic\n    steps: [{channel: console}]\n",
    "two problems": POLICIES.replace("to: [backup, Duty manager]", "to: [backup, Nobody]").replace(
        "to: [Duty manager]\n", "to: [Night manager]\n"
    ),
}


def stored_sha(svc: Handlers) -> str:
    with svc.store.session() as db:
        return hashlib.sha256(policies.dump(db).encode()).hexdigest()


def loads(svc: Handlers) -> list[AuditEntry]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "policies_loaded")
                .order_by(AuditEntry.id)
            )
        )


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_save_is_refused_as_vigil_policy_check_refuses_and_changes_nothing(
    svc: Handlers, vigil: Any, tmp_path: Path, case: str
) -> None:
    load(svc, CONTACTS + POLICIES)
    admin = svc.user("ada", Role.ADMIN)
    before = svc.http.get(FILE, headers=admin).json()
    text = CONTACTS + BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    cli = vigil("policy", "check", str(path), ok=False)
    assert cli.stderr.startswith(f"error: {path}:\n")
    said = cli.stderr.removeprefix(f"error: {path}:\n").rstrip("\n")
    assert said

    checked = svc.http.post(f"{FILE}/check", json={"yaml": text}, headers=admin)
    assert checked.status_code == 422 and checked.json()["detail"] == said
    saved = svc.http.put(FILE, json={"yaml": text}, headers=admin)
    assert saved.status_code == 422 and saved.json()["detail"] == said
    # Nothing changed, and nothing was written to the audit log.
    assert svc.http.get(FILE, headers=admin).json() == before
    assert loads(svc) == []


def test_the_messages_name_the_place(svc: Handlers) -> None:
    admin = svc.user("ada", Role.ADMIN)
    r = svc.http.post(f"{FILE}/check", json={"yaml": CONTACTS + BAD["duration"]}, headers=admin)
    assert r.json()["detail"].startswith("policies[0].steps[3].after: ")
    r = svc.http.post(f"{FILE}/check", json={"yaml": CONTACTS + BAD["two problems"]}, headers=admin)
    assert r.json()["detail"].splitlines() == [
        "policies[0] (Panic).steps[3].to[1]: no contact named 'Nobody'",
        "policies[1] (Tests).steps[1].to[0]: no contact named 'Night manager'",
    ]
    good = svc.http.post(f"{FILE}/check", json={"yaml": CONTACTS + POLICIES}, headers=admin)
    assert good.json() == {"valid": True, "contacts": 3, "policies": 2}


def alert_pk(svc: Handlers, device_alert_id: str) -> int:
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
    assert pk is not None
    return pk


def test_a_good_save_is_what_the_engine_uses_and_is_audited_so_it_can_be_undone(
    svc: Handlers,
) -> None:
    load(svc, CONTACTS + POLICIES)
    admin = svc.user("ada", Role.ADMIN)
    ops = svc.user("op1", Role.OPERATOR)
    old = svc.http.get(FILE, headers=admin).json()
    assert old["sha256"] == hashlib.sha256(old["yaml"].encode()).hexdigest()
    # The first step of the panic policy is now an SMS to the duty manager.
    new = old["yaml"].replace(
        "  - channel: console\n  - channel: voice\n    to:\n    - worker\n",
        "  - channel: sms\n    to:\n    - Duty manager\n",
        1,
    )
    assert new != old["yaml"]
    r = svc.http.put(FILE, json={"yaml": new, "base": old["sha256"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == "policies changed 'Panic'"
    assert r.json()["sha256"] == stored_sha(svc) != old["sha256"]

    device, _ = svc.badge("adm-pol")
    pk = alert_pk(svc, device.raise_alert(type="red"))
    wait_until(
        lambda: svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()["steps"],
        timeout=10,
        what="the escalation to start",
    )
    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    assert plan["policy"] == "Panic" and plan["round_size"] == 3
    assert plan["steps"][0]["channel"] == "sms"
    assert plan["steps"][0]["to"] == [{"name": "Duty manager", "kind": "contact"}]
    wait_until(
        lambda: any(
            n["address"] == DUTY
            for n in svc.http.get(
                f"/api/v1/escalation/alerts/{pk}/notifications", headers=ops
            ).json()
        ),
        timeout=10,
        what="the new first step's SMS",
    )

    # The audit entry says what changed, and holds the file it replaced.
    (entry,) = loads(svc)
    assert (entry.actor, entry.target) == ("user:ada", "console")
    assert entry.details["summary"] == "policies changed 'Panic'"
    assert entry.details["previous_sha256"] == old["sha256"]
    assert entry.details["previous"] == old["yaml"]
    # Saved from a version that is no longer the stored one: refused, nothing changed.
    stale = svc.http.put(FILE, json={"yaml": old["yaml"], "base": old["sha256"]}, headers=admin)
    assert stale.status_code == 409 and "changed by someone else" in stale.json()["detail"]
    assert stored_sha(svc) == r.json()["sha256"] and len(loads(svc)) == 1
    # The previous file from the audit log puts it back exactly.
    undo = svc.http.put(FILE, json={"yaml": entry.details["previous"]}, headers=admin)
    assert undo.status_code == 200 and undo.json()["sha256"] == old["sha256"]
    assert svc.http.get(FILE, headers=admin).json() == old


def test_the_download_is_the_file_vigil_policy_dump_writes(svc: Handlers) -> None:
    load(svc, CONTACTS + POLICIES)
    sup = svc.user("sue", Role.SUPERVISOR)
    r = svc.http.get(f"{FILE}.yaml", headers=sup)
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="vigil-policies.yaml"'
    assert r.headers["content-type"].startswith("application/yaml")
    with svc.store.session() as db:
        assert r.text == policies.dump(db)
    again, loaded = policies.parse_file(r.text), policies.parse_file(CONTACTS + POLICIES)
    assert again.policies == loaded.policies
    assert sorted(again.contacts, key=lambda c: c.name) == sorted(
        loaded.contacts, key=lambda c: c.name
    )


def preview(svc: Handlers, headers: dict[str, str], **params: Any) -> Any:
    r = svc.http.get("/api/v1/escalation/preview", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def housing_team(svc: Handlers, headers: dict[str, str]) -> int:
    teams = svc.http.get("/api/v1/escalation/preview/teams", headers=headers).json()
    return int(next(t["id"] for t in teams if t["name"] == "Housing" and t["org"] == "Test Org"))


def same_steps(plan: dict[str, Any], shown: dict[str, Any], positions: range) -> None:
    """The plan of a real alert and the preview agree on each step at these positions."""
    by_position = {s["position"]: s for s in shown["steps"]}
    planned = {s["position"]: s for s in plan["steps"]}
    for p in positions:
        real, seen = planned[p], by_position[p]
        assert (real["label"], real["channel"]) == (seen["label"], seen["channel"]), p
        assert [r["kind"] for r in real["to"]] == [r["kind"] for r in seen["to"]], p
        assert [r["name"] for r in real["to"] if r["kind"] != "worker"] == [
            r["name"] for r in seen["to"] if r["kind"] != "worker"
        ], p
        assert real["nobody"] == seen["nobody"], p
        assert all(r["name"] == STAND_IN for r in seen["to"] if r["kind"] == "worker"), p


def test_the_preview_agrees_with_what_the_engine_does(svc: Handlers) -> None:
    load(svc, CONTACTS + POLICIES)
    sup = svc.user("sue", Role.SUPERVISOR)
    ops = svc.user("op1", Role.OPERATOR)
    device, badge = svc.badge("adm-prev")
    team = housing_team(svc, sup)

    # A panic: the console and the call to the worker at once, then the SMS, then the calls.
    shown = preview(svc, sup, alert_type="red", team_id=team)
    assert shown["policy"] == "Panic" and shown["team"] == "Housing"
    assert [s["at_s"] for s in shown["steps"]] == [0, 0, 60, 180, 180, 180, 240, 360]
    assert shown["steps"][2]["to"] == [
        {"name": "Housing backup", "kind": "backup", "address": BACKUP, "skipped": None}
    ]
    pk = alert_pk(svc, device.raise_alert(type="red"))
    wait_until(
        lambda: svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()["next"] == 2,
        timeout=10,
        what="the first two steps",
    )
    plan = svc.http.get(f"/api/v1/alerts/{pk}/escalation", headers=ops).json()
    assert plan["policy"] == shown["policy"]
    same_steps(plan, shown, range(4))
    due = {s["position"]: s["due_at"] for s in plan["steps"]}
    gap = datetime.fromisoformat(due[3]) - datetime.fromisoformat(due[2])
    assert gap.total_seconds() == shown["steps"][3]["at_s"] - shown["steps"][2]["at_s"]

    # Under duress (a visit ended with the duress PIN): every step at once, the worker's
    # phone held back, then the policy again.
    shown = preview(svc, sup, alert_type="duress", team_id=team)
    assert shown["duress"] and shown["policy"] == "Panic"
    assert [s["at_s"] for s in shown["steps"]] == [0, 0, 0, 0, 0, 0, 60, 180]
    assert [s["burst"] for s in shown["steps"]] == [True] * 4 + [False] * 4
    assert shown["steps"][1]["to"][0]["skipped"].startswith("Call to ")
    assert "held back" in shown["steps"][1]["to"][0]["skipped"]
    visit = device.start_visit()
    device.end_visit(visit, badge.duress_pin)
    with svc.store.session() as db:
        duress_pk = db.scalar(select(Alert.id).where(Alert.type == "duress"))
    assert duress_pk is not None
    wait_until(
        lambda: (
            svc.http.get(f"/api/v1/alerts/{duress_pk}/escalation", headers=ops).json()["next"] == 6
        ),
        timeout=10,
        what="the duress burst and the steps after it",
    )
    plan = svc.http.get(f"/api/v1/alerts/{duress_pk}/escalation", headers=ops).json()
    assert plan["duress"] and plan["policy"] == "Panic"
    same_steps(plan, shown, range(8))

    # A test alert: the SMS is left out, as the engine leaves it out.
    shown = preview(svc, sup, alert_type="test", team_id=team)
    assert [s["channel"] for s in shown["steps"]] == ["console"]
    test_device_alert = device.raise_alert(type="test")
    test_pk = alert_pk(svc, test_device_alert)
    wait_until(
        lambda: svc.http.get(f"/api/v1/alerts/{test_pk}/escalation", headers=ops).json()["steps"],
        timeout=10,
        what="the test alert's escalation",
    )
    plan = svc.http.get(f"/api/v1/alerts/{test_pk}/escalation", headers=ops).json()
    assert plan["policy"] == shown["policy"] == "Tests"
    assert plan["round_size"] == len(shown["steps"]) == 1
    same_steps(plan, shown, range(1))
    # A test cancelled with the duress PIN is an emergency: the duress policy, as the engine.
    shown = preview(svc, sup, alert_type="test", team_id=team, duress=True)
    assert shown["policy"] == "Panic" and len(shown["steps"]) == 8
    device.cancel_alert(test_device_alert, badge.duress_pin)
    wait_until(
        lambda: svc.http.get(f"/api/v1/alerts/{test_pk}/escalation", headers=ops).json()["duress"],
        timeout=10,
        what="the duress on the test alert",
    )
    plan = svc.http.get(f"/api/v1/alerts/{test_pk}/escalation", headers=ops).json()
    assert plan["policy"] == shown["policy"] and plan["round_size"] == 4
    # No policy for the type: operators only, said so.
    shown = preview(svc, sup, alert_type="device_offline", team_id=team)
    assert shown["policy"] == "" and shown["steps"][0]["channel"] == "console"


def test_who_may_read_preview_and_save(svc: Handlers) -> None:
    load(svc, CONTACTS + POLICIES)
    add_badge(svc.store, "adm-own")
    add_badge(svc.store, "adm-other", org="Other Org", team="Roads")
    text = {"yaml": CONTACTS + POLICIES}
    ops = svc.user("op1", Role.OPERATOR)
    sup = svc.user("sue", Role.SUPERVISOR)
    admin = svc.user("ada", Role.ADMIN)
    org_admin = svc.user("oda", Role.ADMIN, org="Test Org")
    for who in (ops,):
        assert svc.http.get(FILE, headers=who).status_code == 403
        assert (
            svc.http.get("/api/v1/escalation/preview?alert_type=red", headers=who).status_code
            == 403
        )
    assert svc.http.get(FILE, headers=sup).status_code == 200
    assert svc.http.post(f"{FILE}/check", json=text, headers=sup).status_code == 200
    # The whole service's safety leads (supervisors) and admins change them.
    assert svc.http.put(FILE, json=text, headers=sup).status_code == 200
    assert svc.http.put(FILE, json=text, headers=admin).status_code == 200
    contact = {"name": "Duty manager", "phone": DUTY}
    assert (
        svc.http.put("/api/v1/escalation/contacts/Duty manager", json=contact, headers=sup)
    ).status_code == 200
    # One organisation's admin: the file holds every organisation's contacts, so neither
    # reading nor replacing it; previews within the organisation.
    assert svc.http.get(FILE, headers=org_admin).status_code == 403
    assert svc.http.put(FILE, json=text, headers=org_admin).status_code == 403
    teams = svc.http.get("/api/v1/escalation/preview/teams", headers=org_admin).json()
    assert [(t["org"], t["name"]) for t in teams] == [("Test Org", "Housing")]
    all_teams = svc.http.get("/api/v1/escalation/preview/teams", headers=sup).json()
    roads = next(t["id"] for t in all_teams if t["name"] == "Roads")
    r = svc.http.get(
        "/api/v1/escalation/preview",
        params={"alert_type": "red", "team_id": roads},
        headers=org_admin,
    )
    assert r.status_code == 404
    own = preview(svc, org_admin, alert_type="red")
    assert own["org"] == "Test Org" and own["policy"] == "Panic"
    mine = preview(svc, org_admin, alert_type="red", team_id=teams[0]["id"])
    assert mine["team"] == "Housing"


def test_a_contact_edited_through_the_form_is_checked_against_the_policies_and_audited(
    svc: Handlers,
) -> None:
    load(svc, CONTACTS + POLICIES)
    add_badge(svc.store, "adm-contact")
    admin = svc.user("ada", Role.ADMIN)
    before = svc.http.get(FILE, headers=admin).json()
    url = "/api/v1/escalation/contacts/Duty manager"
    # The panic policy calls the duty manager: a contact without a phone is refused.
    r = svc.http.put(url, json={"name": "Duty manager", "phone": ""}, headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "policies[0] (Panic).steps[3].to[1]: contact 'Duty manager' has no phone number for voice"
        "\npolicies[1] (Tests).steps[1].to[0]: contact 'Duty manager' has no phone number for sms"
    )
    r = svc.http.put(url, json={"name": "Duty manager", "phone": "07700 900"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "phone"]
    # In words, not as the pattern a number must match.
    assert r.json()["detail"][0]["msg"] == (
        "a phone number with its country code, such as +447700900100"
    )
    assert svc.http.get(FILE, headers=admin).json() == before
    # Written with spacing, as people write it (and as a worker's phone may be): kept as dialled.
    r = svc.http.put(url, json={"name": "Duty manager", "phone": "+44 7700 900555"}, headers=admin)
    assert r.status_code == 200
    with svc.store.session() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact_changed")).one()
    assert entry.details["previous"]["phone"] == DUTY
    assert entry.details["contact"]["phone"] == "+447700900555"
    shown = preview(svc, admin, alert_type="red", team_id=housing_team(svc, admin))
    assert shown["steps"][3]["to"][1]["address"] == "+447700900555"


def test_a_policy_or_contact_changed_or_deleted_alone_keeps_what_it_was_in_the_audit_log(
    svc: Handlers,
) -> None:
    # As a save of the whole file keeps the file it replaced: a wrong change can be put back.
    load(svc, CONTACTS + POLICIES)
    admin = svc.user("ada", Role.ADMIN)
    panic = next(p for p in svc.http.get(FILE, headers=admin).json()["policies"])
    assert panic["name"] == "Panic"
    url = "/api/v1/escalation/policies/Panic"
    r = svc.http.put(url, json=panic | {"repeat": panic["repeat"] + 1}, headers=admin)
    assert r.status_code == 200, r.text
    assert svc.http.delete(url, headers=admin).status_code == 204
    r = svc.http.delete("/api/v1/escalation/contacts/Emergency dispatch", headers=admin)
    assert r.status_code == 204, r.text
    with svc.store.session() as db:
        entries = {
            e.action: e.details
            for e in db.scalars(
                select(AuditEntry).where(
                    AuditEntry.action.in_(["policy_changed", "policy_deleted", "contact_deleted"])
                )
            )
        }
    assert entries["policy_changed"]["previous"] == panic
    assert entries["policy_changed"]["policy"]["repeat"] == panic["repeat"] + 1
    assert entries["policy_deleted"]["previous"]["repeat"] == panic["repeat"] + 1
    assert entries["contact_deleted"]["previous"]["name"] == "Emergency dispatch"
