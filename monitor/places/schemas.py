"""What the places and cautions routes take and give (docs/api.md, Places and cautions)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from monitor.places.models import CautionKind

# What the databases can hold: no NUL character (PostgreSQL refuses it).
Address = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]
CautionText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
RowRef = Annotated[int, Field(ge=1, lt=2**31)]


def _iso_date(value: object) -> object:
    # Only "YYYY-MM-DD": pydantic's own date parsing would also take a number of seconds.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD")
    return date.fromisoformat(value)


Day = Annotated[date, BeforeValidator(_iso_date)]
# A caution's kind, one of CautionKind's values (lax, so that the JSON string is taken).
Kind = Annotated[CautionKind, Field(strict=False)]

_IN = ConfigDict(extra="forbid", strict=True)


class PlaceIn(BaseModel):
    model_config = _IN

    address: Address
    lat: Lat | None = None
    lon: Lon | None = None
    org_id: RowRef | None = None


class PlaceChange(BaseModel):
    model_config = _IN

    address: Address | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class CautionIn(BaseModel):
    model_config = _IN

    kind: Kind
    text: CautionText
    expires_on: Day
    review_on: Day | None = None
    team_id: RowRef | None = None


class CautionChange(BaseModel):
    model_config = _IN

    kind: Kind | None = None
    text: CautionText | None = None
    expires_on: Day | None = None
    review_on: Day | None = None
    team_id: RowRef | None = None


class IncidentCautionIn(CautionIn):
    address: Address | None = None


class CautionOut(BaseModel):
    id: int
    place_id: int
    kind: str
    kind_label: str
    text: str
    team_id: int | None
    team: str | None
    recorded_by: str
    recorded_at: datetime
    review_on: date | None
    expires_on: date
    source_alert_id: int | None
    review_due: bool


class ReviewOut(CautionOut):
    address: str


class PlaceOut(BaseModel):
    id: int
    org_id: int
    org: str
    address: str
    lat: float | None
    lon: float | None
    caution_count: int
    review_due_count: int


class IncidentAtPlace(BaseModel):
    alert_id: int
    raised_at: datetime
    type: str
    duress: bool
    outcome: str | None
    state: str
    worker: str | None


class PlaceDetail(PlaceOut):
    cautions: list[CautionOut]
    incidents: list[IncidentAtPlace]


class PlaceRef(BaseModel):
    id: int
    address: str
    lat: float | None
    lon: float | None


class AlertCautions(BaseModel):
    place: PlaceRef | None
    matched_by: str | None
    distance_m: float | None
    cautions: list[CautionOut]
    previous: list[IncidentAtPlace]


class DeviceCaution(BaseModel):
    kind: str
    label: str
    text: str


class DevicePlace(BaseModel):
    id: int
    address: str
    cautions: list[DeviceCaution]
