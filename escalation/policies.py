"""Policies and contacts: their format, validation, YAML files, and which policy an alert gets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from escalation import arc, channels
from escalation.channels import ChannelName
from escalation.channels.base import RESERVED
from escalation.models import Contact, Policy
from monitor.alerts.states import AlertType
from monitor.db import utcnow
from monitor.phones import dialable
from monitor.yaml_input import NotYaml, read_yaml

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")

_UNITS = {"s": 1, "m": 60, "h": 3600}
MIN_ROUND_S = 10


class PolicyError(ValueError):
    """A policy or contact file that cannot be used; the message names the bad field."""


def _seconds(value: Any) -> Any:
    """`after` may be a number of seconds or a string such as "90s", "2m" or "1h"."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
        if m is None:
            raise ValueError('a number of seconds, or a duration such as "90s", "2m", "1h"')
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=86400)]


def _arc_address(value: str) -> str:
    if value:
        arc.parse(value)  # its ValueError names what is wrong
    return value


# An alarm-receiving centre's sia-dc09:// address (escalation.arc), checked in full.
ArcAddress = Annotated[str, Field(max_length=500), AfterValidator(_arc_address)]


def _phone(value: str) -> str:
    # Said in words (not as the pattern it must match), and written as people write it
    # ("+44 7700 900100", as a worker's phone may be): kept as Twilio dials it.
    if not value:
        return value
    number = dialable(value)
    if number is None:
        raise PydanticCustomError(
            "phone", "a phone number with its country code, such as +447700900100"
        )
    return number


Phone = Annotated[str, Field(max_length=32), AfterValidator(_phone)]
# Printable names: no control characters (and so no NUL, which PostgreSQL cannot store).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: Phone = Field("", description="E.164")
    webhook: str = Field("", max_length=2000, pattern=r"^(https?://\S+)?$")
    arc: ArcAddress = Field("", description="sia-dc09://host:port?account=...&prefix=...")
    backup_for: list[Name] = Field(default_factory=list, description="Team names")


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: Seconds = Field(0, description="Seconds after the previous step (or the alert).")
    channel: ChannelName
    to: list[Name] = Field(default_factory=list, max_length=50)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    alert_types: list[AlertType] = Field(default_factory=list, description="Empty: every type.")
    org: Name | None = None
    team: Name | None = None
    repeat: int = Field(0, ge=0, le=10, description="Times the steps run again after the last.")
    steps: list[StepIn] = Field(min_length=1, max_length=30)


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactIn] = Field(default_factory=list)
    policies: list[PolicyIn] = Field(default_factory=list)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def explain(exc: ValidationError) -> str:
    """Pydantic's errors as lines that name the field: `policies[0].steps[2].after: ...`."""
    return "\n".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())


def check_references(policies: list[PolicyIn], contacts: list[ContactIn]) -> None:
    """Every recipient must exist and be reachable over its step's channel."""
    by_name = {c.name: c for c in contacts}
    problems = []
    for c in contacts:
        if c.name in RESERVED:
            problems.append(f"contacts: {c.name!r} is a reserved recipient name")
    for i, p in enumerate(policies):
        if p.repeat and sum(s.after for s in p.steps) < MIN_ROUND_S:
            problems.append(
                f"policies[{i}] ({p.name}).repeat: a policy that repeats must wait at least "
                f"{MIN_ROUND_S} s in all between its steps, or every round goes out at once"
            )
        for j, step in enumerate(p.steps):
            at = f"policies[{i}] ({p.name}).steps[{j}]"
            channel = channels.get(step.channel)
            if why := channel.refuse_step(step.to):
                problems.append(f"{at}.to: {why}")
            for k, name in enumerate(step.to):
                if why := channel.refuse(name, by_name.get(name)):
                    problems.append(f"{at}.to[{k}]: {why}")
    if problems:
        raise PolicyError("\n".join(problems))


def parse_file(text: str) -> PolicyFile:
    try:
        raw = read_yaml(text)
    except NotYaml as exc:
        raise PolicyError(str(exc)) from exc
    try:
        parsed = PolicyFile.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise PolicyError(explain(exc)) from exc
    seen: set[str] = set()
    for kind, names in (
        ("contacts", [c.name for c in parsed.contacts]),
        ("policies", [p.name for p in parsed.policies]),
    ):
        seen.clear()
        for name in names:
            if name in seen:
                raise PolicyError(f"{kind}: {name!r} appears twice")
            seen.add(name)
    check_references(parsed.policies, parsed.contacts)
    return parsed


def stored_contacts(db: Session) -> list[ContactIn]:
    return [
        ContactIn(name=c.name, phone=c.phone, webhook=c.webhook, arc=c.arc, backup_for=c.backup_for)
        for c in db.scalars(select(Contact).order_by(Contact.name))
    ]


# Built once: an escalation's start reads the policies, and building the statement costs
# more than running it from SQLAlchemy's cache.
_POLICIES = select(Policy).order_by(Policy.name)


def stored_policies(db: Session) -> list[PolicyIn]:
    return [PolicyIn.model_validate(p.spec) for p in db.scalars(_POLICIES)]


def replace_all(db: Session, parsed: PolicyFile) -> None:
    """Make the stored contacts and policies exactly the file's (one transaction)."""
    db.execute(delete(Policy))
    db.execute(delete(Contact))
    db.flush()
    for c in parsed.contacts:
        db.add(Contact(**c.model_dump()))
    for p in parsed.policies:
        db.add(Policy(name=p.name, spec=p.model_dump(mode="json")))


def dump(db: Session) -> str:
    data = {
        "contacts": [c.model_dump(exclude_defaults=True) for c in stored_contacts(db)],
        "policies": [
            p.model_dump(mode="json", exclude_defaults=True, exclude={"steps"})
            | {"steps": [s.model_dump(mode="json", exclude_defaults=True) for s in p.steps]}
            for p in stored_policies(db)
        ],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def put_policy(db: Session, policy: PolicyIn) -> None:
    check_references([policy], stored_contacts(db))
    row = db.scalar(select(Policy).where(Policy.name == policy.name).with_for_update())
    if row is None:
        db.add(Policy(name=policy.name, spec=policy.model_dump(mode="json")))
    else:
        row.spec = policy.model_dump(mode="json")
        row.updated_at = utcnow()


def put_contact(db: Session, contact: ContactIn) -> None:
    others = [c for c in stored_contacts(db) if c.name != contact.name]
    # A change that leaves a policy without a way to reach someone is refused.
    check_references(stored_policies(db), [*others, contact])
    row = db.scalar(select(Contact).where(Contact.name == contact.name).with_for_update())
    if row is None:
        db.add(Contact(**contact.model_dump()))
    else:
        for key, value in contact.model_dump().items():
            setattr(row, key, value)
        row.updated_at = utcnow()


def delete_contact(db: Session, name: str) -> bool:
    others = [c for c in stored_contacts(db) if c.name != name]
    check_references(stored_policies(db), others)
    return db.execute(delete(Contact).where(Contact.name == name)).rowcount > 0  # type: ignore[attr-defined,no-any-return]


def choose(
    policies: list[PolicyIn], alert_type: str, org: str | None, team: str | None
) -> PolicyIn | None:
    """The most specific policy for this alert: a team's over an organisation's over one for
    everybody; among equals, one naming the alert type over one for every type, then by name.
    A duress alert with no policy of its own takes the red alert's."""
    for kind in (alert_type, AlertType.RED.value) if alert_type == "duress" else (alert_type,):
        fits = [
            p
            for p in policies
            if (not p.alert_types or kind in p.alert_types)
            and (p.org is None or p.org == org)
            and (p.team is None or p.team == team)
        ]
        if fits:
            return min(
                fits,
                key=lambda p: (
                    -(2 * (p.team is not None) + (p.org is not None)),
                    not p.alert_types,
                    p.name,
                ),
            )
    return None
