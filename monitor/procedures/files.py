"""The stored procedures as one YAML file: read with its hash, checked (with the
organisations and teams it names), and replaced whole, audited; `vigil sop` and the
console's editor both use these."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.procedures import definitions
from monitor.procedures.models import ProcedureFile, ProcedureIn
from monitor.whole_files import changes, check_base, digest


@dataclass(frozen=True)
class Stored:
    yaml: str  # as `vigil sop dump` writes it
    sha256: str  # of `yaml`: what an edit names as the version it started from
    procedures: list[ProcedureIn]


def stored(db: Session) -> Stored:
    text = definitions.dump(db)
    return Stored(text, digest(text), definitions.stored(db))


def check(db: Session, text: str) -> ProcedureFile:
    """The file, or ProcedureError naming each bad place (`procedures[0] (Panic).steps`):
    what `vigil sop check` says, and then whether the organisations and teams it names
    exist, as `vigil sop load` checks."""
    parsed = definitions.parse_file(text)
    definitions.check_names(db, parsed)
    return parsed


class Loaded(BaseModel):
    procedures: int
    sha256: str  # of the file as now stored (dumped again)
    summary: str  # what changed, in words


def load(
    db: Session, parsed: ProcedureFile, *, actor: str, source: str, base: str | None = None
) -> Loaded:
    """Make the stored procedures exactly `parsed` (a parsed file), in the caller's
    transaction, audited with the file it replaced, so a bad change can be put back. Refused
    (ProcedureError) if it names an organisation or team that does not exist; with `base`,
    refused (Stale) if the stored file is no longer that version. Open alerts keep the
    checklist they already have."""
    definitions.check_names(db, parsed)
    before = stored(db)
    check_base(base, before.sha256, "the procedures")
    definitions.replace_all(db, parsed)
    db.flush()
    now = digest(definitions.dump(db))
    said = (
        changes(
            "procedures",
            {p.name: p for p in before.procedures},
            {p.name: p for p in parsed.procedures},
        )
        or "no change"
    )
    audit(
        db,
        actor,
        "procedures_loaded",
        source,
        summary=said,
        procedures=[p.name for p in parsed.procedures],
        sha256=now,
        previous_sha256=before.sha256,
        previous=before.yaml,
    )
    return Loaded(procedures=len(parsed.procedures), sha256=now, summary=said)
