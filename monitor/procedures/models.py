"""The procedures table and the schemas of a procedure: as written in YAML, and as shown on
an alert with each step's tick."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.alerts.states import AlertType
from monitor.db import Base, utcnow


class Procedure(Base):
    __tablename__ = "procedures"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The procedure as validated (ProcedureIn), kept whole: what an alert's checklist is
    # copied from, and what `vigil sop dump` writes back.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Printable names: no control characters (and so no NUL, which PostgreSQL cannot store).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
# A step's words may run over lines, but carry no NUL.
Words = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]+$")]


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    do: Name = Field(description="What to do, in a few words: the line the operator ticks.")
    detail: Words | None = Field(None, description="How, or what to say: shown under the line.")

    @model_validator(mode="before")
    @classmethod
    def _line(cls, value: Any) -> Any:
        """A step with nothing to add under its line may be written as the line alone."""
        return {"do": value} if isinstance(value, str) else value


class ProcedureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    alert_types: list[AlertType] = Field(
        default_factory=list, description="Empty: every type but duress."
    )
    org: Name | None = None
    team: Name | None = None
    steps: list[StepIn] = Field(min_length=1, max_length=40)


class ProcedureFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    procedures: list[ProcedureIn] = Field(default_factory=list)


class StepOut(BaseModel):
    """One step of an alert's checklist, with its tick as the timeline last recorded it."""

    index: int
    do: str
    detail: str | None
    done: bool
    by: str | None = None
    at: datetime | None = None


class AlertProcedure(BaseModel):
    """The procedure that applies to an alert, as it was when it first applied."""

    alert_id: int
    # None: no stored procedure fits this alert.
    name: str | None
    # What it was chosen for: the alert's type, or duress.
    kind: str
    applied_at: datetime | None
    # Which timeline entry applied it; every tick names it.
    seq: int | None
    steps: list[StepOut]
    # Whether the alert is open: a closed alert's checklist is part of the record.
    active: bool


class TickIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    done: bool = True
