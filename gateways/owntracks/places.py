"""An OwnTracks transition written into the timeline of the visit its worker has open."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from gateways.owntracks.messages import Place
from monitor.db import Store
from monitor.devices.models import Device
from monitor.visits import service as visits


def record(store: Store, device_id: str, place: Place) -> bool:
    """Add the place to the worker's open visit, once; True if an entry was added.

    Only while a visit is open, and only what happened since it started: a region can be
    someone's home, and outside a visit Vigil keeps no name of where the worker was
    (docs/privacy.md). Called after the transition's position was stored, in a transaction
    of its own."""
    try:
        with store.begin() as db:
            device = db.get(Device, device_id)
            if device is None:
                return False
            visit = visits.open_visit_of(db, device)
            # OwnTracks gives whole seconds: one in the second the visit started is in it.
            if visit is None or place.at < visit.started_at.replace(microsecond=0):
                return False
            entry = visits.record(
                db,
                visit,
                "place",
                f"device:{device_id}",
                place.text,
                key=place.key,
                at=place.at,
                **place.data,
            )
            return entry is not None
    except IntegrityError:
        # The same report, added by another replica a moment ago: it is there once.
        return False
