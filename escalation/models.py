"""Tables and schemas for contacts, policies, running escalations (with the policy snapshotted
onto each) and notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from escalation.states import CallState, EscalationState, NotificationStatus, StepState
from monitor.db import Base, utcnow


class RecipientKind(StrEnum):
    WORKER = "worker"  # the worker who raised the alert: asked whether they are safe
    BACKUP = "backup"  # backup staff of the worker's team
    CONTACT = "contact"  # a contact the step names


class Recipient(BaseModel):
    """One person or system a step reaches, as they were when the escalation started."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: RecipientKind
    phone: str = ""
    webhook: str | None = None  # a contact's (maybe ""); workers and backup staff have none
    arc: str | None = None  # a contact's alarm-receiving centre (escalation.arc), likewise


class StepSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    after: float  # seconds after the step before it ran (the first: after the alert)
    channel: str  # a name in escalation.channels.CHANNELS
    to: tuple[Recipient, ...] = ()
    # Names in the policy's `to` that resolved to nobody as the escalation started (`backup`
    # for a team without backup staff), so the timeline can say why the step reached nobody.
    # None when every name resolved (and in rows older than this field).
    missing: tuple[str, ...] | None = None


class EscalationSnapshot(BaseModel):
    """The policy as it was when the escalation started, its recipients resolved (Grafana
    OnCall's EscalationSnapshot): later edits to policies and contacts do not change it.

    A step's position counts over every round: round * len(steps) + index. A duress burst
    is a new round of every step from position `burst`, after which the policy runs its
    rounds again, up to `limit`.
    """

    model_config = ConfigDict(frozen=True)

    repeat: int
    steps: tuple[StepSnapshot, ...]
    burst: int | None = None
    limit: int | None = None

    def step_at(self, position: int) -> StepSnapshot:
        return self.steps[position % len(self.steps)]

    def positions(self) -> int:
        """Positions run at most: the policy's rounds, or after a duress burst, the burst's."""
        if self.limit is not None:
            return self.limit
        return len(self.steps) * (self.repeat + 1)

    def in_burst(self, position: int) -> bool:
        """Whether the step at `position` is one of the duress burst's."""
        return self.burst is not None and self.burst <= position < self.burst + len(self.steps)

    def with_burst(self, burst: int) -> EscalationSnapshot:
        """This snapshot with a duress burst from `burst`, and the policy's rounds after it."""
        limit = burst + len(self.steps) * (self.repeat + 1)
        return self.model_copy(update={"burst": burst, "limit": limit})

    def waits(self, first: int, last: int) -> list[tuple[int, float]]:
        """The positions from `first` up to `last`, each with its time after the step before
        `first` ran: a step falls due its own `after` after the one before it ran (the
        first step, after the alert), so later times are sums. The plan's estimates and the
        preview (escalation.plan, escalation.preview) both read them here."""
        out, at = [], 0.0
        for position in range(first, last):
            at += self.step_at(position).after
            out.append((position, at))
        return out

    def label(self, position: int) -> str:
        """How the timeline names a step: "step 2 of 4", "step 1 of 4, round 2"."""
        n = len(self.steps)
        text = f"step {position % n + 1} of {n}"
        return text + (f", round {position // n + 1}" if position >= n else "")


class SnapshotJSON(TypeDecorator[EscalationSnapshot]):
    """An EscalationSnapshot in a JSON column, as rows have always held it: keys left out
    when they have no value (burst, limit, a worker's webhook)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: EscalationSnapshot | None, dialect: Any
    ) -> dict[str, Any] | None:
        return None if value is None else value.model_dump(mode="json", exclude_none=True)

    def process_result_value(
        self, value: dict[str, Any] | None, dialect: Any
    ) -> EscalationSnapshot | None:
        return None if value is None else EscalationSnapshot.model_validate(value)


class Contact(Base):
    """Someone (or some system) a policy may notify: backup staff, a manager, dispatch."""

    __tablename__ = "escalation_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    webhook: Mapped[str] = mapped_column(String(2000), default="")
    # An alarm-receiving centre's receiver, a sia-dc09:// URI (escalation.arc); no secret in
    # it: it names the environment variable that holds the AES key.
    arc: Mapped[str] = mapped_column(String(500), default="")
    # Names of the teams this person is backup staff for (recipient `backup`).
    backup_for: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Policy(Base):
    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The policy as validated (escalation.policies.PolicyIn), kept whole: it is what gets
    # snapshotted onto an alert, and what `vigil policy dump` writes back.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Escalation(Base):
    """One alert's escalation, with the policy as it was when the alert was raised."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), unique=True)
    policy: Mapped[str] = mapped_column(String(200), default="")
    snapshot: Mapped[EscalationSnapshot] = mapped_column(SnapshotJSON)
    # running -> acknowledged | ended (EscalationState)
    state: Mapped[str] = mapped_column(String(16), default=EscalationState.RUNNING.value)
    duress: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class Step(Base):
    """One step of one escalation, due at a time; runs once (claimed under a row lock)."""

    __tablename__ = "escalation_steps"
    # One row per position: two replicas can never both schedule the same step.
    __table_args__ = (
        UniqueConstraint("escalation_id", "position", name="uq_escalation_steps_position"),
        Index("ix_escalation_steps_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    # Index into the policy's steps over all its rounds: round * len(steps) + index.
    position: Mapped[int]
    due_at: Mapped[datetime]
    # pending -> done | cancelled | error (StepState)
    state: Mapped[str] = mapped_column(String(16), default=StepState.PENDING.value)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))


class Notification(Base):
    """One message to one recipient: an SMS, a call, a webhook POST."""

    __tablename__ = "escalation_notifications"
    __table_args__ = (
        Index("ix_escalation_notifications_due", "status", "next_attempt_at"),
        # SMS replies are matched to what was sent to their number.
        Index("ix_escalation_notifications_address", "address"),
        # The restores owed to alarm-receiving centres are looked for among theirs.
        Index("ix_escalation_notifications_channel", "channel", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_steps.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(200))
    # RecipientKind: a worker is called to ask whether they are safe.
    recipient_kind: Mapped[str] = mapped_column(String(16), default=RecipientKind.CONTACT.value)
    address: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text, default="")
    # pending, claimed, then the provider's own words (queued, sent, delivered, ringing,
    # in-progress, completed, busy, no-answer, failed, undelivered, canceled), or ours:
    # acknowledged, outbox (recorded, not sent), cancelled (never sent), error (gave up).
    # See NotificationStatus.
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING.value)
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    # The replica sending it (VIGIL_MQTT_NODE): at its restart, its unfinished sends go again.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TwilioRequestSeen(Base):
    """A request from Twilio that was acted on, by what makes it unique: an SMS reply by its
    MessageSid, a key press by its CallSid and the nonce of the URL it was posted to, a
    delivery status by the message's or call's sid and the status. Twilio's signature covers
    no time, so a request recorded and replayed a month later is still validly signed: only
    this table tells a replay, and rows are kept for as long as the alerts they acted on."""

    __tablename__ = "escalation_twilio_seen"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_id: int
    channel: str
    recipient: str
    recipient_kind: str
    address: str
    body: str
    status: str
    provider_sid: str | None
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class Call(Base):
    """A call an operator placed from an alert (escalation.calls): their own phone is rung
    first, then bridged to the worker's phone or a contact's. Its changes are written to
    the alert's timeline; this row holds where it stands and the legs' Twilio sids."""

    __tablename__ = "escalation_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    placed_by: Mapped[str] = mapped_column(String(100))  # the operator's username
    operator_phone: Mapped[str] = mapped_column(String(32))
    # RecipientKind: the worker, or a contact of the alert (backup staff or named).
    to_kind: Mapped[str] = mapped_column(String(16))
    to_name: Mapped[str] = mapped_column(String(200))
    to_phone: Mapped[str] = mapped_column(String(32))
    # CallState (escalation.states)
    state: Mapped[str] = mapped_column(String(16), default=CallState.CALLING_OPERATOR.value)
    recorded: Mapped[bool] = mapped_column(default=False)  # VIGIL_CALL_RECORDING when placed
    operator_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    other_sid: Mapped[str | None] = mapped_column(String(64))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    evidence_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")  # the latest change, as told
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[int | None]


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_id: int
    placed_by: str
    to_kind: str
    to_name: str
    to_phone: str
    state: str
    recorded: bool
    recording_sid: str | None
    evidence_id: str | None
    detail: str
    created_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
