"""A filtered incident list as CSV: a header row, then one incident per row. Types, states
and outcomes are given as stored (for formulas and imports) and in words (for people)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from monitor.alerts.labels import OUTCOME_LABELS, STATE_LABELS, TYPE_LABELS
from monitor.incidents.models import IncidentOut

COLUMNS = (
    "id",
    "raised_at",
    "device_ts",
    "type",
    "type_label",
    "duress",
    "state",
    "state_label",
    "outcome",
    "outcome_label",
    "worker_id",
    "worker_name",
    "team_id",
    "team",
    "device_id",
    "lat",
    "lon",
    "acc",
    "acknowledged_at",
    "acknowledged_by",
    "time_to_acknowledge_s",
    "resolved_at",
    "resolved_by",
    "time_to_resolve_s",
    "cancelled_at",
    "hold",
    "note",
)
# What people typed (names, notes) could start a formula in a spreadsheet that opens the
# file: such a cell gets a leading apostrophe, as OWASP advises for CSV injection.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TYPED = frozenset({"worker_name", "team", "note", "acknowledged_by", "resolved_by", "device_id"})


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if name in TYPED and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(rows: list[IncidentOut]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = row.model_dump()
        values["type_label"] = TYPE_LABELS[row.type]
        values["state_label"] = STATE_LABELS[row.state]
        values["outcome_label"] = OUTCOME_LABELS[row.outcome] if row.outcome else None
        writer.writerow([_cell(c, values[c]) for c in COLUMNS])
    return out.getvalue()
