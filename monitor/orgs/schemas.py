"""What people type about organisations, teams and workers, and what the API answers. The
rules here are the ones the command line and the console share: a PIN is 4 to 8 digits, the
two PINs differ, a PIN typed twice must match, a phone is one Vigil can dial."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from monitor.db import MAX_ROW_ID
from monitor.phones import dialable

_PIN = re.compile(r"[0-9]{4,8}")


def _pin(value: str) -> str:
    if not _PIN.fullmatch(value):
        raise PydanticCustomError("pin", "a PIN is 4 to 8 digits")
    return value


def _phone(value: str) -> str:
    # Operators call it from an alert and the Vigil number recognises the worker by it, so it
    # must be a number Vigil can dial; spacing as people write it is kept.
    if value and dialable(value) is None:
        raise PydanticCustomError(
            "phone", "a phone number with its country code, such as +44 7700 900123"
        )
    return value


Pin = Annotated[str, StringConstraints(max_length=8), AfterValidator(_pin)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_phone)
]
Notes = Annotated[str, StringConstraints(max_length=4000)]
# A row's id in a body: one larger than the database holds is refused, not stored.
RowRef = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class Pins(BaseModel):
    """A worker's cancel PIN and duress PIN. Never returned, logged or audited: only their
    argon2 hashes are stored."""

    model_config = ConfigDict(extra="forbid")

    cancel_pin: Pin
    duress_pin: Pin

    @field_validator("duress_pin")
    @classmethod
    def _differs(cls, value: str, info: ValidationInfo) -> str:
        duress_differs(value, info)
        return value


def duress_differs(duress: str | None, info: ValidationInfo) -> str | None:
    """A duress PIN that also cancels would leave the worker no silent call for help."""
    if duress is not None and info.data.get("cancel_pin") == duress:
        raise PydanticCustomError("pins", "the cancel PIN and the duress PIN must differ")
    return duress


def _same(value: str, info: ValidationInfo, pin: str, what: str) -> str:
    typed = info.data.get(pin)
    if typed is not None and typed != value:
        raise PydanticCustomError("pins", f"the two {what} PINs typed are not the same")
    return value


class PinsTwice(Pins):
    """The PINs as a person types them into a form: each twice, so a slip of the finger is not
    what the worker must then remember under threat."""

    cancel_pin_again: str = Field(max_length=8)
    duress_pin_again: str = Field(max_length=8)

    @field_validator("cancel_pin_again")
    @classmethod
    def _cancel_again(cls, value: str, info: ValidationInfo) -> str:
        return _same(value, info, "cancel_pin", "cancel")

    @field_validator("duress_pin_again")
    @classmethod
    def _duress_again(cls, value: str, info: ValidationInfo) -> str:
        return _same(value, info, "duress_pin", "duress")


class WorkerFields(BaseModel):
    """What is written about a worker, as `vigil worker add` and the console take it."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: Phone = ""
    responder_notes: Notes = ""


class WorkerIn(WorkerFields, Pins):
    """`vigil worker add`: a team and organisation by name (made if new), and the PINs."""

    team: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class NewWorker(WorkerFields):
    """A worker added in the console: their team (or, without one, their organisation), and
    their PINs, or none yet when the worker is to choose them through a link."""

    team_id: RowRef | None = None
    org_id: RowRef | None = None
    pins: PinsTwice | None = None


class WorkerEdit(BaseModel):
    """Everything about a worker but their PINs, as it is to be; a new team moves them."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: Phone
    responder_notes: Notes
    team_id: RowRef | None


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    org: str | None = None
    team_id: int | None
    team: str | None = None
    name: str
    phone: str
    responder_notes: str
    # Whether the worker has PINs at all (never what they are).
    pins_set: bool = False
    low_battery: bool
    low_battery_since: datetime | None


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    # Needed from an account of the whole service; others add to their own organisation.
    org_id: RowRef | None = None


class TeamEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class TeamOut(BaseModel):
    id: int
    org_id: int
    org: str
    name: str
    workers: int


class OrgIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    require_visit_end_pin: bool = False


class OrgEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    require_visit_end_pin: bool


class OrgOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    require_visit_end_pin: bool
    teams: int = 0
    workers: int = 0


class PinLinkOut(BaseModel):
    link: str
    expires_at: datetime
    qr_svg: str


class PinLinkToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(max_length=100)


class PinLinkAbout(BaseModel):
    worker_name: str
    expires_at: datetime


class PinLinkUse(PinsTwice):
    """The worker's own choice, with the link's token."""

    token: str = Field(max_length=100)
