"""What a notification says: the alert summed up for an SMS, a voice call, dispatch, a webhook."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from monitor.reads.alert_detail import AlertDetail

LABELS = {
    "red": "RED ALERT",
    "man_down": "MAN DOWN",
    "no_motion": "NO MOTION",
    "test": "TEST ALERT",
    "visit_overdue": "VISIT OVERDUE",
    "device_offline": "DEVICE OFFLINE",
    "duress": "DURESS",
}
# Keypad answers on a call (the TwiML gathers one digit).
ACK_DIGIT, REPEAT_DIGIT = "1", "2"


def link(public_url: str, alert_id: int) -> str:
    return f"{public_url.rstrip('/')}/#alert={alert_id}"


def _label(a: AlertDetail) -> str:
    if a.duress and a.type != "duress":
        return f"DURESS ({LABELS[a.type]})"
    return LABELS[a.type]


def _who(a: AlertDetail) -> str:
    name = a.worker_name or f"device {a.device_id}"
    return f"{name} ({a.team})" if a.team else name


def _fix_time(a: AlertDetail) -> datetime | None:
    """When the position told (`a.position`, the newest) was taken, if it is not the one the
    device sent with the alert: none came (a phone indoors has no fix at the press, and one
    a few seconds later), or the worker has moved since. The reader judges it by its age."""
    p = a.position
    if p is None or p.at is None or (p.lat, p.lon, p.at) == (a.lat, a.lon, a.device_ts):
        return None
    return p.at


def _where(a: AlertDetail, *, spoken: bool = False) -> str:
    parts = []
    if a.visit is not None and a.visit.note:
        parts.append(f"visiting {a.visit.note}")
    if (p := a.position) is not None:
        at = _fix_time(a)
        if spoken:
            acc = f" within {p.acc:.0f} metres" if p.acc is not None else ""
            when = f", as of {at:%H:%M} UTC" if at is not None else ""
            parts.append(f"latitude {p.lat:.5f}, longitude {p.lon:.5f}{acc}{when}")
        else:
            acc = f" ±{p.acc:.0f}m" if p.acc else ""
            when = f" at {at:%H:%M:%S}" if at is not None else ""
            parts.append(f"{p.lat:.5f},{p.lon:.5f}{acc}{when}")
    return "; ".join(parts) or "position not known yet"


def _since(a: AlertDetail) -> str:
    return a.raised_at.strftime("%H:%M:%S UTC")


def _to_worker(a: AlertDetail) -> str:
    if a.type == "visit_overdue":
        return "your visit is overdue"
    return f"your device raised an alert ({LABELS[a.type].lower()})"


def sms(a: AlertDetail, public_url: str, *, to_worker: bool = False) -> str:
    if to_worker:
        return f"Vigil: {_to_worker(a)}. If you are safe, reply {ACK_DIGIT}."
    return (
        f"VIGIL {_label(a)} #{a.id}: {_who(a)}. {_where(a)}. Since {_since(a)}. "
        f"Reply 1 if you are handling it. {link(public_url, a.id)}"
    )


def voice(a: AlertDetail, *, to_worker: bool = False, dispatch: bool = False) -> str:
    """What the call says before it asks for a key (the caller hears it again on 2)."""
    if to_worker:
        return f"This is Vigil: {_to_worker(a)}. If you are safe, press {ACK_DIGIT}."
    opening = (
        "This is Vigil, a lone-worker monitoring service, reporting an emergency. "
        if dispatch
        else "This is Vigil. "
    )
    note = f" The worker's note: {a.note}." if a.note else ""
    return (
        f"{opening}{_label(a).capitalize()} from {_who(a)}, raised at {_since(a)}. "
        f"Where: {_where(a, spoken=True)}.{note} "
        f"Press {ACK_DIGIT} if you are handling it. Press {REPEAT_DIGIT} to hear this again."
    )


def webhook(a: AlertDetail, public_url: str, *, step: int, type_: str) -> str:
    """The JSON body of a webhook notification (signed when sent: escalation.providers), of
    the channel's `type_` ("vigil.alert.escalation", "vigil.alert.dispatch")."""
    base = public_url.rstrip("/")
    p = a.position
    payload: dict[str, Any] = {
        "type": type_,
        "step": step,
        "summary": f"{_label(a)} #{a.id}: {_who(a)}. {_where(a)}. Since {_since(a)}.",
        "link": link(public_url, a.id),
        "alert": {
            "id": a.id,
            "type": a.type.value,
            "duress": a.duress,
            "priority": a.priority,
            "state": a.state.value,
            "raised_at": a.raised_at.isoformat(),
            "device_ts": a.device_ts.isoformat() if a.device_ts else None,
            "worker": {"name": a.worker_name, "team": a.team},
            "position": (
                {
                    "lat": p.lat,
                    "lon": p.lon,
                    "accuracy_m": p.acc,
                    "at": p.at.isoformat() if p.at is not None else None,
                }
                if p is not None
                else None
            ),
            "visit_note": a.visit.note if a.visit is not None else None,
            "note": a.note,
            "evidence": [
                {
                    "sha256": e.sha256,
                    "duration_ms": e.duration_ms,
                    "url": f"{base}/api/v1/evidence/{e.id}/audio" if e.uploaded_at else None,
                }
                for e in a.evidence
            ],
        },
    }
    return json.dumps(payload, separators=(",", ":"))
