"""Who sees a worker's position when: operators only while the worker has an active alert
or an open visit; supervisors and admins always, or the same as operators if so configured."""

from __future__ import annotations

from typing import Any, TypeVar

from monitor.alerts.models import AlertEventOut, AlertOut
from monitor.alerts.states import ACTIVE_STATES
from monitor.devices.models import DeviceOut
from monitor.reads.alert_detail import AlertDetail
from monitor.visits.models import VisitOut, VisitState

# Keys of timeline entries' data that hold positions: a "raised" entry's `loc`, a
# "positions" entry's `fixes`, an outbox message's `body` (its summary says where).
_POSITION_KEYS = frozenset({"loc", "lat", "lon", "acc", "fixes", "body"})
# Kinds of a visit's timeline entries that say where the worker was.
PLACE_KINDS = frozenset({"place"})
# What a message shows in place of its text once the alert is over, to whom may not see it.
WITHHELD = "(withheld once the alert is over: it gives the worker's position)"

A = TypeVar("A", bound=AlertOut)


def alert(out: A, always: bool) -> A:
    """The alert as this person may see it: without positions once it is over, unless
    `always`. An alert's position stays in the store for the incident record."""
    if always or out.state in ACTIVE_STATES:
        return out
    out.lat = out.lon = out.acc = None
    if isinstance(out, AlertDetail):
        out.trail = []
        # Said, so that the console does not call it unknown (the store still holds it).
        out.position, out.position_missing = None, "withheld"
        out.timeline = [_without_position(e) for e in out.timeline]
        if out.visit is not None:
            # A place the phone reported (an OwnTracks region's name) says where the worker
            # was as a fix does.
            out.visit.events = [e for e in out.visit.events if e.kind not in PLACE_KINDS]
    return out


def _without_position(entry: AlertEventOut) -> AlertEventOut:
    if not _POSITION_KEYS & entry.data.keys():
        return entry
    data: dict[str, Any] = {k: v for k, v in entry.data.items() if k not in _POSITION_KEYS}
    return entry.model_copy(update={"data": data})


def message(body: str, alert_state: str, always: bool) -> str:
    """An SMS, call or webhook text as sent, or WITHHELD."""
    return body if always or alert_state in ACTIVE_STATES else WITHHELD


def visit(out: VisitOut, always: bool) -> VisitOut:
    if not always and out.state != VisitState.OPEN:
        out.lat = out.lon = None
    return out


def device(out: DeviceOut, always: bool, active: bool) -> DeviceOut:
    """A device's last fix, where `active` says its worker has an active alert or open
    visit."""
    if not always and not active:
        out.last_lat = out.last_lon = out.last_acc = None
    return out
