"""The fleet file, YAML or CSV, read into typed rows with every problem named by its place
(`workers[3].devices[0].id: ...`, `line 14, device_id: ...`), using the rules the one-by-one
commands use for a worker's fields and PINs and a device's id and kind."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.devices.service import DeviceError, check_new_device
from monitor.orgs.schemas import Name, Notes, Phone, Pin, Pins, duress_differs
from monitor.orgs.service import DEFAULT_ORG
from monitor.yaml_input import NotYaml, read_yaml

# What a spreadsheet has, one row a device: a row with no name is one more device of the
# worker above it.
CSV_COLUMNS = (
    "name",
    "organisation",
    "team",
    "phone",
    "notes",
    "cancel_pin",
    "duress_pin",
    "device_id",
    "device_kind",
    "heartbeat_interval_s",
)


class FleetFileError(ValueError):
    """The file cannot be imported: each line of the message is one problem and its place."""


class DeviceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str = "badge"
    heartbeat_interval_s: int = 300

    @model_validator(mode="after")
    def _as_one_device_is(self) -> DeviceRow:
        try:
            check_new_device(self.id, self.kind, self.heartbeat_interval_s)
        except DeviceError as e:
            raise ValueError(str(e)) from None
        return self


def _team(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


class WorkerRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    organisation: Name = DEFAULT_ORG
    team: Annotated[str | None, Field(max_length=200), AfterValidator(_team)] = None
    phone: Phone = ""
    notes: Notes = ""
    # Both or neither: without them the worker chooses theirs through a link (docs/admin.md).
    cancel_pin: Pin | None = None
    duress_pin: Pin | None = None
    devices: list[DeviceRow] = Field(default_factory=list)

    _differs = field_validator("duress_pin")(duress_differs)

    @model_validator(mode="after")
    def _pins_both_or_neither(self) -> WorkerRow:
        if (self.cancel_pin is None) != (self.duress_pin is None):
            raise ValueError("give both PINs, cancel_pin and duress_pin, or neither")
        return self

    def pins(self) -> Pins | None:
        if self.cancel_pin is None or self.duress_pin is None:
            return None
        return Pins(cancel_pin=self.cancel_pin, duress_pin=self.duress_pin)


class FleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: list[WorkerRow]


@dataclass(frozen=True)
class Parsed:
    fleet: FleetFile
    # The CSV's line of each worker (device None) and device; none for YAML.
    lines: dict[tuple[int, int | None], int] | None

    def where(self, worker: int, device: int | None = None) -> str:
        """A row's place as the file's author finds it: its line, or its path in the YAML."""
        if self.lines is not None:
            return f"line {self.lines.get((worker, device), self.lines[(worker, None)])}"
        return f"workers[{worker}]" + (f".devices[{device}]" if device is not None else "")


def parse(text: str, *, csv_file: bool) -> Parsed:
    """The file's workers and devices, or FleetFileError naming every problem."""
    if csv_file:
        raw, lines = _csv_rows(text)
    else:
        raw, lines = _yaml_rows(text), None
    try:
        return Parsed(FleetFile.model_validate(raw), lines)
    except ValidationError as e:
        raise FleetFileError("\n".join(_explain(e, lines))) from None


def _yaml_rows(text: str) -> Any:
    try:
        raw = read_yaml(text)
    except NotYaml as e:
        raise FleetFileError(str(e)) from None
    return raw if raw is not None else {"workers": []}


def _csv_rows(text: str) -> tuple[dict[str, Any], dict[tuple[int, int | None], int]]:
    """The rows as the YAML's shape, and where each worker and device came from (its line)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("name", "device_id") if c not in (reader.fieldnames or [])]
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    if missing or unknown:
        problems = [f"the first line lacks the column {c!r}" for c in missing]
        problems += [f"unknown column {c!r} (columns: {', '.join(CSV_COLUMNS)})" for c in unknown]
        raise FleetFileError("\n".join(problems))
    workers: list[dict[str, Any]] = []
    places: dict[tuple[int, int | None], int] = {}
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if cells.get("name"):
            worker: dict[str, Any] = {
                k: cells[k]
                for k in ("name", "organisation", "team", "phone", "notes")
                if cells.get(k)
            }
            for pin in ("cancel_pin", "duress_pin"):
                if cells.get(pin):
                    worker[pin] = cells[pin]
            worker["devices"] = []
            workers.append(worker)
            places[(len(workers) - 1, None)] = line
        elif not workers:
            raise FleetFileError(f"line {line}: a device with no worker above it (name is empty)")
        if cells.get("device_id"):
            device: dict[str, Any] = {"id": cells["device_id"]}
            if cells.get("device_kind"):
                device["kind"] = cells["device_kind"]
            if cells.get("heartbeat_interval_s"):
                device["heartbeat_interval_s"] = cells["heartbeat_interval_s"]
            workers[-1]["devices"].append(device)
            places[(len(workers) - 1, len(workers[-1]["devices"]) - 1)] = line
    return {"workers": workers}, places


def _explain(e: ValidationError, places: dict[tuple[int, int | None], int] | None) -> list[str]:
    lines = []
    for err in e.errors():
        loc = list(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if places is None or len(loc) < 2 or loc[0] != "workers":
            lines.append(f"{_path(loc)}: {msg}")
            continue
        worker = int(loc[1])
        device = int(loc[3]) if len(loc) > 3 and loc[2] == "devices" else None
        line = places.get((worker, device), places.get((worker, None)))
        field = ".".join(str(p) for p in loc[4 if device is not None else 2 :])
        if device is not None:
            field = {"id": "device_id", "kind": "device_kind"}.get(field, field)
        lines.append(f"line {line}, {field}: {msg}" if field else f"line {line}: {msg}")
    return lines


def _path(loc: list[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "file"
