"""Tables for places (an address and its position) and the cautions recorded about them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class CautionKind(StrEnum):
    AGGRESSIVE_ANIMAL = "aggressive_animal"
    HOSTILE_PERSON = "hostile_person"
    PREVIOUS_ASSAULT = "previous_assault"
    WEAPONS = "weapons"
    DRUGS = "drugs"
    SAFEGUARDING = "safeguarding"
    ACCESS = "access"
    HEALTH_HAZARD = "health_hazard"
    OTHER = "other"


class Place(Base):
    """An address as people write it ("Flat 3, 12 Elm Street"), with its position where
    known; owned by one organisation."""

    __tablename__ = "places"
    # A visit's start looks for the organisation's places within a box of latitudes (then
    # longitudes): one index serves that and every look-up by organisation.
    __table_args__ = (Index("ix_places_org_id_lat", "org_id", "lat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    address: Mapped[str] = mapped_column(String(300))
    # The address folded for searching as the worker types (lower case, words only).
    address_key: Mapped[str] = mapped_column(String(300), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Caution(Base):
    """What is known about a place that a worker going there, or an operator helping them,
    must know. Often personal data about someone living there: it always expires."""

    __tablename__ = "cautions"

    id: Mapped[int] = mapped_column(primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("places.id"), index=True)
    # Who may see it: the place's organisation, or one team of it.
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When someone should look at it again; after `expires_on` it is hidden, and deleted
    # once the retention period after that has passed.
    review_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    # The incident it was made from, if any.
    source_alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime | None]
