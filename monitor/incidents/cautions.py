"""An incident turned into a caution in one step: at the alert's place, or at a new place
where it happened."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.places import service as places
from monitor.places.errors import PlaceRefused
from monitor.places.models import Caution
from monitor.places.schemas import CautionIn, IncidentCautionIn, PlaceIn
from monitor.reads.alert_places import place_of, raised_where


def caution_from_incident(
    db: Session, alert_id: int, data: IncidentCautionIn, *, by: places.Actor, within_m: float
) -> Caution:
    """A caution at the place the alert is matched to or, if none, at a new place named
    `data.address` at the alert's position. Outside the person's scope the alert does not
    exist (AlertNotFound)."""
    alerts.check_in_scope(db, alert_id, by.scope)
    alert = alerts.get(db, alert_id)
    match = place_of(db, alert, within_m)
    at = raised_where(db, alert)
    if match is not None:
        place_id = match.place.id
    elif alert.org_id is None or at is None:
        raise PlaceRefused(
            "the alert has no position and matches no place: add the place, then the caution"
        )
    elif data.address is None:
        raise PlaceRefused("address: the alert matches no place; give the address")
    else:
        where = PlaceIn(address=data.address, lat=at[0], lon=at[1], org_id=alert.org_id)
        place_id = places.add_place(db, where, by=by).id
    caution = CautionIn.model_validate(data.model_dump(exclude={"address"}))
    return places.add_caution(db, place_id, caution, by=by, source_alert_id=alert.id)
