"""The escalation API: policies and contacts (supervisors and admins of the whole service),
an alert's notifications and the outbox (everyone signed in)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from escalation import flows, policies
from escalation.models import Notification, NotificationOut, Policy
from escalation.plan import Plan, plan_of
from escalation.policies import ContactIn, PolicyError, PolicyIn
from escalation.states import NotificationStatus
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.audit.service import audit
from monitor.deps import (
    CurrentUser,
    ReadSessionDep,
    RowId,
    ScopeDep,
    ServiceSupervisor,
    SessionDep,
)
from monitor.orgs.scope import Scope
from monitor.privacy import positions
from monitor.users.accounts import actor_of

router = APIRouter(prefix="/api/v1/escalation", tags=["escalation"])
NamePath = Annotated[str, Path(min_length=1, max_length=200)]


def _refuse(exc: PolicyError) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/policies")
def list_policies(db: ReadSessionDep, user: ServiceSupervisor) -> list[PolicyIn]:
    return policies.stored_policies(db)


@router.put("/policies/{name}")
def put_policy(name: NamePath, body: PolicyIn, db: SessionDep, user: ServiceSupervisor) -> PolicyIn:
    """Create or replace a policy. Running escalations keep the version they started with."""
    if body.name != name:
        raise HTTPException(422, f"the body names policy {body.name!r}, the URL {name!r}")
    before = _stored_policy(db, name)
    try:
        policies.put_policy(db, body)
    except PolicyError as exc:
        raise _refuse(exc) from exc
    audit(
        db,
        actor_of(user),
        "policy_changed",
        name,
        policy=body.model_dump(mode="json"),
        previous=before,
    )
    return body


# What a change or a deletion replaced goes in its audit entry, as a save of the whole file
# keeps the file it replaced (escalation.policy_files.load): a wrong one can be put back.


def _stored_policy(db: Session, name: str) -> dict[str, Any] | None:
    found = next((p for p in policies.stored_policies(db) if p.name == name), None)
    return found.model_dump(mode="json") if found is not None else None


def _stored_contact(db: Session, name: str) -> dict[str, Any] | None:
    found = next((c for c in policies.stored_contacts(db) if c.name == name), None)
    return found.model_dump() if found is not None else None


@router.delete("/policies/{name}", status_code=204, response_class=Response)
def delete_policy(name: NamePath, db: SessionDep, user: ServiceSupervisor) -> Response:
    before = _stored_policy(db, name)
    if db.execute(delete(Policy).where(Policy.name == name)).rowcount == 0:  # type: ignore[attr-defined]
        raise HTTPException(404, f"no policy {name!r}")
    audit(db, actor_of(user), "policy_deleted", name, previous=before)
    return Response(status_code=204)


@router.get("/contacts")
def list_contacts(db: ReadSessionDep, user: ServiceSupervisor) -> list[ContactIn]:
    return policies.stored_contacts(db)


@router.put("/contacts/{name}")
def put_contact(
    name: NamePath, body: ContactIn, db: SessionDep, user: ServiceSupervisor
) -> ContactIn:
    """Create or replace a contact, checked against every policy that names it."""
    if body.name != name:
        raise HTTPException(422, f"the body names contact {body.name!r}, the URL {name!r}")
    before = _stored_contact(db, name)
    try:
        policies.put_contact(db, body)
    except PolicyError as exc:
        raise _refuse(exc) from exc
    audit(
        db,
        actor_of(user),
        "contact_changed",
        name,
        contact=body.model_dump(),
        previous=before,
    )
    return body


@router.delete("/contacts/{name}", status_code=204, response_class=Response)
def delete_contact(name: NamePath, db: SessionDep, user: ServiceSupervisor) -> Response:
    before = _stored_contact(db, name)
    try:
        found = policies.delete_contact(db, name)
    except PolicyError as exc:
        raise HTTPException(409, f"policies still name {name!r}: {exc}") from exc
    if not found:
        raise HTTPException(404, f"no contact {name!r}")
    audit(db, actor_of(user), "contact_deleted", name, previous=before)
    return Response(status_code=204)


@router.get("/alerts/{alert_id}/notifications")
def alert_notifications(
    alert_id: RowId, db: ReadSessionDep, scope: ScopeDep
) -> list[NotificationOut]:
    alerts.check_in_scope(db, alert_id, scope)
    rows = db.execute(
        select(Notification, Alert.state)
        .join(Alert, Alert.id == Notification.alert_id)
        .where(Notification.alert_id == alert_id)
        .order_by(Notification.id)
    )
    return [_shown(n, state, scope) for n, state in rows]


@router.get("/outbox")
def outbox(
    db: ReadSessionDep,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    """What would have been sent by SMS or call, had Twilio been configured (the demo)."""
    rows = db.execute(
        select(Notification, Alert.state)
        .join(Alert, Alert.id == Notification.alert_id)
        .where(
            Notification.status == NotificationStatus.OUTBOX.value,
            scope.covers(Alert.worker_id, Alert.org_id),
        )
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    return [_shown(n, state, scope) for n, state in rows]


def _shown(n: Notification, alert_state: str, scope: Scope) -> NotificationOut:
    out = NotificationOut.model_validate(n)
    out.body = positions.message(out.body, alert_state, scope.positions_always)
    return out


# -- an alert's escalation plan, and "Escalate now" ------------------------------------------

alert_router = APIRouter(prefix="/api/v1/alerts", tags=["escalation"])


@alert_router.get("/{alert_id}/escalation")
def escalation_plan(alert_id: RowId, db: ReadSessionDep, scope: ScopeDep) -> Plan:
    """The alert's escalation: its steps with what each did, the next and when it is due,
    and why it stopped."""
    alerts.check_in_scope(db, alert_id, scope)
    return plan_of(db, alerts.get(db, alert_id))


@alert_router.post("/{alert_id}/escalate")
def escalate_now(
    alert_id: RowId,
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
) -> Plan:
    """Run the next step now ("Escalate now"), written in the timeline with who asked;
    409 with the reason when there is no next step or the escalation has stopped."""
    alerts.check_in_scope(db, alert_id, scope)
    try:
        flows.escalate_now(db, alert_id, actor_of(user))
    except flows.Refused as exc:
        raise HTTPException(409, str(exc)) from exc
    # The step runner looks at once, after the commit (a background task runs after it),
    # rather than at its next tick; other replicas' runners find the step at theirs.
    background.add_task(request.app.state.escalation.wake)
    return plan_of(db, alerts.get(db, alert_id))
