"""The policy snapshotted onto an alert as its escalation starts, its recipients resolved
from who the alert is about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from escalation import channels
from escalation.channels.console import Console
from escalation.models import Contact, EscalationSnapshot, Recipient, RecipientKind, StepSnapshot
from escalation.policies import choose, stored_policies
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertType
from monitor.orgs.models import Organisation, Team, Worker

CONSOLE_ONLY = (StepSnapshot(after=0, channel=Console.name),)
# Statements on the path to the first SMS are built once: building one costs more than
# running it from SQLAlchemy's cache.
_CONTACTS = select(Contact).order_by(Contact.name)


@dataclass
class Context:
    """Who an alert is about, as a policy is chosen and its recipients resolved."""

    worker: Worker | None
    team: str | None
    org: str | None


def context(db: Session, alert: Alert) -> Context:
    """The alert's worker, team and organisation, in one query rather than one each."""
    if alert.worker_id is None and alert.org_id is None:
        return Context(None, None, None)
    row = db.execute(_CONTEXT, {"alert_id": alert.id}).one()
    return Context(*row[1:])


def with_context(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """`query` on alerts, with the alert's worker, team name and organisation name added."""
    return (
        query.add_columns(Worker, Team.name, Organisation.name)
        .outerjoin(Worker, Worker.id == Alert.worker_id)
        .outerjoin(Team, Team.id == Worker.team_id)
        .outerjoin(Organisation, Organisation.id == Alert.org_id)
    )


def _step(
    ctx: Context, contacts: list[Contact], after: float, channel: str, names: list[str]
) -> StepSnapshot:
    """The step with its `to` resolved to people and addresses, as they are now, and the
    names that resolved to nobody."""
    out: list[Recipient] = []
    missing: list[str] = []
    for name in names:
        found = len(out)
        if name == RecipientKind.WORKER.value:
            if ctx.worker is not None:
                w = ctx.worker
                out.append(Recipient(name=w.name, kind=RecipientKind.WORKER, phone=w.phone))
        elif name == RecipientKind.BACKUP.value:
            for c in contacts:
                if ctx.team is not None and ctx.team in c.backup_for:
                    out.append(Recipient(name=c.name, kind=RecipientKind.BACKUP, phone=c.phone))
        else:
            named = next((c for c in contacts if c.name == name), None)
            if named is not None:
                out.append(
                    Recipient(
                        name=named.name,
                        kind=RecipientKind.CONTACT,
                        phone=named.phone,
                        webhook=named.webhook,
                        arc=named.arc or None,
                    )
                )
        if len(out) == found:
            missing.append(name)
    return StepSnapshot(after=after, channel=channel, to=tuple(out), missing=tuple(missing) or None)


def snapshot(
    db: Session, alert: Alert, kind: str, ctx: Context | None = None
) -> tuple[str, EscalationSnapshot]:
    """The policy for an alert of this kind, with its recipients resolved as they are now."""
    return snapshot_for(db, kind, ctx or context(db, alert))


def kind_under_duress(alert_type: str) -> str | None:
    """The kind whose policy an alert of this type takes when the duress PIN is keyed, or
    None to keep the one it started with: a test is an emergency once under duress."""
    return AlertType.DURESS.value if alert_type == AlertType.TEST.value else None


def snapshot_for(db: Session, kind: str, ctx: Context) -> tuple[str, EscalationSnapshot]:
    """snapshot(), for whoever `ctx` describes: an alert's, or a preview's (escalation.preview)."""
    policy = choose(stored_policies(db), kind, ctx.org, ctx.team)
    if policy is None:
        return "", EscalationSnapshot(repeat=0, steps=CONSOLE_ONLY)
    # Every contact at once, and only if a step names anyone but the worker.
    contacts: list[Contact] = []
    if any(name != RecipientKind.WORKER.value for s in policy.steps for name in s.to):
        contacts = list(db.scalars(_CONTACTS))
    steps = tuple(_step(ctx, contacts, s.after, s.channel, s.to) for s in policy.steps)
    if kind == AlertType.TEST.value:
        # A test alert proves the badge works; it must not wake anybody's phone.
        quiet = tuple(s for s in steps if channels.get(s.channel).for_tests)
        return policy.name, EscalationSnapshot(repeat=0, steps=quiet or CONSOLE_ONLY)
    return policy.name, EscalationSnapshot(repeat=policy.repeat, steps=steps)


_CONTEXT = with_context(select(Alert.id)).where(Alert.id == bindparam("alert_id"))
