"""Who an alert of a given type, for a given team, would reach and when, with the stored
policies and contacts: built from the snapshot and step rules the engine itself uses
(escalation.snapshots, EscalationSnapshot, escalation.flows), not from rules of its own."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from escalation import channels, snapshots
from escalation.delivery import aimed_at_worker
from escalation.flows import held_back_reason, missing_reason, no_address_reason
from escalation.models import EscalationSnapshot, RecipientKind
from escalation.policies import PolicyIn, stored_policies
from monitor.alerts.labels import TYPE_LABELS, plural
from monitor.alerts.states import AlertType
from monitor.orgs.models import Organisation, Team, Worker

# A policy may repeat thirty steps ten times; the preview lists this many and counts the rest.
SHOWN_AT_MOST = 60
# The worker a preview's `worker` recipient stands for: no one in particular.
STAND_IN = "the worker who raised the alert"


class PreviewRecipient(BaseModel):
    name: str
    kind: str  # RecipientKind
    address: str  # phone number, webhook URL or sia-dc09:// address; "" when there is none
    # Why nothing goes to them in this case: held back under duress, no address.
    skipped: str | None = None


class PreviewStep(BaseModel):
    position: int  # over every round, from 0
    label: str  # "step 2 of 4", "step 1 of 4, round 2"
    at_s: float  # seconds after the alert is raised, if nobody takes charge before
    channel: str
    word: str  # "SMS", "Call", "Console"
    sends: bool  # False: operators only, on the console
    burst: bool  # one of a duress burst's steps, all at once
    to: list[PreviewRecipient]
    nobody: str | None  # why names in the policy resolve to nobody ("The team has no ...")


class Preview(BaseModel):
    alert_type: str
    org: str | None
    team: str | None
    duress: bool
    policy: str  # "" when no policy fits: operators only
    why: str  # why this policy, in words
    notes: list[str]  # what duress or a test changes, and that it stops once taken
    steps: list[PreviewStep]
    more: int  # steps after those listed


def _why(policy: PolicyIn | None, kind: str) -> str:
    if policy is None:
        return "No policy fits: operators alone see it on the console"
    whose = (
        f"team {policy.team!r}"
        if policy.team is not None
        else f"organisation {policy.org!r}"
        if policy.org is not None
        else "every organisation and team"
    )
    types = (
        ", ".join(TYPE_LABELS[t] for t in policy.alert_types)
        if policy.alert_types
        else "every alert type"
    )
    fallback = (
        " (no policy names duress, so the panic alert's applies)"
        if kind == AlertType.DURESS.value
        and policy.alert_types
        and AlertType.DURESS.value not in policy.alert_types
        else ""
    )
    return f"Policy {policy.name!r}: for {whose}, alert types {types}{fallback}"


def _recipients(
    snap: EscalationSnapshot, position: int, duress: bool
) -> tuple[list[PreviewRecipient], str | None]:
    """A step's recipients, with why a send would not be made, in the timeline's words
    (escalation.flows.run_step's checks, in its order)."""
    spec = snap.step_at(position)
    channel = channels.get(spec.channel)
    out = []
    for r in spec.to:
        address = channel.address(r) if channel.sends else ""
        skipped = None
        if channel.sends and duress and aimed_at_worker(r.kind.value, address, ""):
            skipped = held_back_reason(channel, r, address)
        elif r.kind is RecipientKind.WORKER:
            address = "their own phone"  # the stand-in has none; every worker's is used
        elif channel.sends and not address:
            skipped = no_address_reason(channel, r)
        out.append(
            PreviewRecipient(name=r.name, kind=r.kind.value, address=address, skipped=skipped)
        )
    nobody = ". ".join(missing_reason(n) for n in spec.missing or ()) or None
    return out, nobody


def preview(
    db: Session, alert_type: AlertType, team: Team | None, org: Organisation | None, duress: bool
) -> Preview:
    """What the escalation of such an alert would do, step by step, if nobody took charge."""
    org_name = org.name if org is not None else None
    team_name = team.name if team is not None else None
    ctx = snapshots.Context(Worker(name=STAND_IN, phone=""), team_name, org_name)
    kind = alert_type.value
    duress = duress or alert_type is AlertType.DURESS
    notes = []
    name, snap = snapshots.snapshot_for(db, kind, ctx)
    if alert_type is AlertType.TEST:
        if duress:
            notes.append(
                "A test alert cancelled with the duress PIN is an emergency: it takes the "
                "duress policy"
            )
        else:
            notes.append(
                "A test alert wakes nobody: only the steps for tests run (the console, an "
                "alarm-receiving centre), once"
            )
    if duress and (under := snapshots.kind_under_duress(kind)):
        kind = under
        name, snap = snapshots.snapshot_for(db, kind, ctx)
    policy = next((p for p in stored_policies(db) if p.name == name), None)
    steps: list[PreviewStep] = []

    def add(position: int, at: float, burst: bool) -> None:
        spec = snap.step_at(position)
        channel = channels.get(spec.channel)
        to, nobody = _recipients(snap, position, duress)
        steps.append(
            PreviewStep(
                position=position,
                label=snap.label(position),
                at_s=at,
                channel=channel.name,
                word=channel.word,
                sends=channel.sends,
                burst=burst,
                to=to,
                nobody=nobody,
            )
        )

    if duress:
        # As flows.apply_duress: every step at once, then the policy's rounds after it.
        snap = snap.with_burst(0)
        n = len(snap.steps)
        for position in range(n):
            add(position, 0.0, True)
        rest = snap.waits(n, snap.positions())
        again = (
            f"then the policy again from its first step ({plural(snap.repeat, 'round')})"
            if snap.positions() > n
            else "and nothing after them (the policy does not repeat)"
        )
        notes.append(
            f"Under duress every step runs at once, {again}; nothing goes to the worker's "
            "phone (the device shows nothing either)"
        )
    else:
        rest = snap.waits(0, snap.positions())
    for position, at in rest[: max(0, SHOWN_AT_MOST - len(steps))]:
        add(position, at, False)
    if snap.repeat and not duress:
        notes.append(f"The steps run again {plural(snap.repeat, 'time')} after the last")
    notes.append(
        "It stops as soon as someone takes charge"
        + (" (a duress burst under way still goes out)" if duress else "")
    )
    return Preview(
        alert_type=alert_type.value,
        org=org_name,
        team=team_name,
        duress=duress,
        policy=name,
        why=_why(policy, kind),
        notes=notes,
        steps=steps,
        more=max(0, snap.positions() - len(steps)),
    )


class TeamChoice(BaseModel):
    id: int
    name: str
    org_id: int
    org: str


def teams(db: Session) -> list[TeamChoice]:
    rows = db.execute(
        select(Team.id, Team.name, Organisation.id, Organisation.name)
        .join(Organisation, Organisation.id == Team.org_id)
        .order_by(Organisation.name, Team.name)
    )
    return [TeamChoice(id=t, name=n, org_id=o, org=on) for t, n, o, on in rows]
