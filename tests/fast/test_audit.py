"""The audit log: sign-ins, refused permissions and administrative changes are written down."""

from __future__ import annotations

from sqlalchemy import select

from monitor.audit.models import AuditEntry
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.support import PASSWORD


def entries(svc: Running, action: str) -> list[AuditEntry]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def test_sign_ins_and_refusals_are_logged(svc: Running) -> None:
    ops = svc.user("olga")
    wrong = {"username": "olga", "password": "not it at all"}
    assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 401
    for _ in range(svc.settings.signin_max_failures):
        svc.http.post("/api/v1/auth/token", data=wrong)
    assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 429

    assert [e.actor for e in entries(svc, "sign_in")] == ["user:olga"]
    failed = entries(svc, "sign_in_failed")
    assert len(failed) == svc.settings.signin_max_failures
    assert failed[0].actor == "olga" and failed[0].address  # the address it came from
    assert len(entries(svc, "sign_in_throttled")) >= 1

    # An operator reaching for a supervisor's page is refused, and that is written down.
    assert svc.http.get("/api/v1/escalation/policies", headers=ops).status_code == 403
    refused = entries(svc, "permission_refused")
    assert [(e.actor, e.target) for e in refused] == [
        ("user:olga", "GET /api/v1/escalation/policies")
    ]
    assert refused[0].details == {"role": "operator"}


def test_administrative_changes_are_logged_and_only_admins_read_the_log(svc: Running) -> None:
    boss = svc.user("sam", Role.SUPERVISOR)
    admin = svc.user("ada", Role.ADMIN)
    contact = {"name": "Duty manager", "phone": "+15005550102"}
    r = svc.http.put("/api/v1/escalation/contacts/Duty manager", json=contact, headers=boss)
    assert r.status_code == 200
    policy = {"name": "P", "steps": [{"channel": "voice", "to": ["Duty manager"]}]}
    assert (
        svc.http.put("/api/v1/escalation/policies/P", json=policy, headers=boss).status_code == 200
    )
    assert svc.http.delete("/api/v1/escalation/policies/P", headers=boss).status_code == 204
    # A refused change (the policy is invalid) leaves no entry: nothing changed.
    bad = {"name": "Q", "steps": [{"channel": "sms", "to": ["Nobody"]}]}
    assert svc.http.put("/api/v1/escalation/policies/Q", json=bad, headers=boss).status_code == 422

    assert svc.http.get("/api/v1/audit", headers=boss).status_code == 403
    log = svc.http.get("/api/v1/audit", headers=admin).json()
    changes = [
        (e["actor"], e["action"], e["target"])
        for e in reversed(log)
        if e["action"].startswith(("policy", "contact"))
    ]
    assert changes == [
        ("user:sam", "contact_changed", "Duty manager"),
        ("user:sam", "policy_changed", "P"),
        ("user:sam", "policy_deleted", "P"),
    ]
    only = svc.http.get("/api/v1/audit", params={"action": "policy_changed"}, headers=admin)
    assert [e["target"] for e in only.json()] == ["P"]
    assert only.json()[0]["details"]["policy"]["steps"][0]["channel"] == "voice"
    assert svc.http.get("/api/v1/audit", params={"limit": 0}, headers=admin).status_code == 422
    # A time without an offset is UTC; one past the end of the calendar is refused, not a 500.
    for since, found in (("2000-01-01T00:00:00", True), ("2999-01-01T00:00:00", False)):
        r = svc.http.get("/api/v1/audit", params={"since": since}, headers=admin)
        assert r.status_code == 200 and bool(r.json()) == found, since
    late = {"since": "9999-12-31T23:00:00-05:00"}
    assert svc.http.get("/api/v1/audit", params=late, headers=admin).status_code == 422


def test_changes_made_at_the_command_line_are_logged(vigil) -> None:  # type: ignore[no-untyped-def]
    vigil("user", "add", "root-admin", "--role", "admin", "--password", PASSWORD)
    vigil("device", "add", "badge-a1")
    vigil("device", "disable", "badge-a1")
    vigil("device", "rotate", "badge-a1")
    store = vigil.store()
    try:
        with store.session() as db:
            got = [(e.actor, e.action, e.target) for e in db.scalars(select(AuditEntry))]
    finally:
        store.dispose()
    assert got == [
        ("cli", "user_added", "root-admin"),
        ("cli", "device_added", "badge-a1"),
        ("cli", "device_disabled", "badge-a1"),
        ("cli", "device_secret_rotated", "badge-a1"),
    ]
