"""The stored contacts and policies as one YAML file: read with its hash, checked, and
replaced whole, audited; `vigil policy check|load` and the console's editor both use these."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.orm import Session

from escalation import policies
from escalation.policies import ContactIn, PolicyError, PolicyFile, PolicyIn
from monitor.audit.service import audit
from monitor.whole_files import Stale, changes, check_base, digest


@dataclass(frozen=True)
class Stored:
    yaml: str  # as `vigil policy dump` writes it
    sha256: str  # of `yaml`: what an edit names as the version it started from
    contacts: list[ContactIn]
    policies: list[PolicyIn]


def stored(db: Session) -> Stored:
    text = policies.dump(db)
    return Stored(text, digest(text), policies.stored_contacts(db), policies.stored_policies(db))


def check(text: str) -> PolicyFile:
    """The file, or PolicyError naming each bad place (`policies[0].steps[2].after: ...`):
    what `vigil policy check` says, word for word."""
    return policies.parse_file(text)


class Loaded(BaseModel):
    contacts: int
    policies: int
    sha256: str  # of the file as now stored (dumped again)
    summary: str  # what changed, in words


def summary(before: Stored, after: PolicyFile) -> str:
    """What a load changes, by name: "policies changed 'Red'; contacts added 'Duty manager'"."""
    parts = [
        changes(
            "policies",
            {p.name: p for p in before.policies},
            {p.name: p for p in after.policies},
        ),
        changes(
            "contacts",
            {c.name: c for c in before.contacts},
            {c.name: c for c in after.contacts},
        ),
    ]
    return "; ".join(p for p in parts if p) or "no change"


def load(
    db: Session, parsed: PolicyFile, *, actor: str, source: str, base: str | None = None
) -> Loaded:
    """Make the stored contacts and policies exactly `parsed` (checked by `check`), in the
    caller's transaction, audited with the file it replaced, so a bad change can be put
    back. With `base`, refused (Stale) if the stored file is no longer that version."""
    before = stored(db)
    check_base(base, before.sha256, "the policies")
    policies.replace_all(db, parsed)
    db.flush()
    now = policies.dump(db)
    said = summary(before, parsed)
    audit(
        db,
        actor,
        "policies_loaded",
        source,
        summary=said,
        contacts=[c.name for c in parsed.contacts],
        policies=[p.name for p in parsed.policies],
        sha256=digest(now),
        previous_sha256=before.sha256,
        previous=before.yaml,
    )
    return Loaded(
        contacts=len(parsed.contacts),
        policies=len(parsed.policies),
        sha256=digest(now),
        summary=said,
    )


__all__ = ["Loaded", "PolicyError", "Stale", "Stored", "check", "digest", "load", "stored"]
