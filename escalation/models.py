"""Tables and API schemas for contacts, policies, running escalations and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class Contact(Base):
    """Someone (or some system) a policy may notify: backup staff, a manager, dispatch."""

    __tablename__ = "escalation_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    webhook: Mapped[str] = mapped_column(String(2000), default="")
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
    # {"repeat": n, "steps": [{"after": s, "channel": c, "to": [{"name", "kind", "phone",
    # "webhook"}]}]}: recipients resolved when the escalation started.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    # running -> acknowledged | ended; after its last step it stays running (and shows
    # "exhausted" in the timeline) until someone takes the alert or it is closed.
    state: Mapped[str] = mapped_column(String(16), default="running")
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
    # pending -> done | cancelled | error (it could not run; the next step went on)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))


class Notification(Base):
    """One message to one recipient: an SMS, a call, a webhook POST."""

    __tablename__ = "escalation_notifications"
    __table_args__ = (
        Index("ix_escalation_notifications_due", "status", "next_attempt_at"),
        # SMS replies are matched to what was sent to their number.
        Index("ix_escalation_notifications_address", "address"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_steps.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(200))
    # worker | backup | contact: a worker is called to ask whether they are safe.
    recipient_kind: Mapped[str] = mapped_column(String(16), default="contact")
    address: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text, default="")
    # pending, claimed, then the provider's own words (queued, sent, delivered, ringing,
    # in-progress, completed, busy, no-answer, failed, undelivered, canceled), or ours:
    # acknowledged, outbox (recorded, not sent), cancelled (never sent), error (gave up).
    status: Mapped[str] = mapped_column(String(16), default="pending")
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
