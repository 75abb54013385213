"""Files people edit whole and the service replaces at once (escalation policies,
procedures): what an edit sends, a version's hash, the refusal of an edit made on an older
version, and what a load changed, by name."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

# Ten times the shipped policy file would be a very large service; more is a mistake.
MAX_FILE_CHARS = 200_000


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=MAX_FILE_CHARS)
    # The sha256 of the version the edit started from: if the stored file has changed
    # since, the save is refused (409) rather than undoing someone else's change.
    base: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


def download(text: str, filename: str) -> Response:
    """The file as a download, to keep or to load elsewhere with the `vigil` command."""
    return Response(
        text,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class Stale(Exception):
    """The stored file changed since the version an edit started from."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_base(base: str | None, stored_sha256: str, what: str) -> None:
    """Stale if an edit started from `base` and the stored file (`stored_sha256`) is no
    longer that version; `what` names the file's contents ("the policies")."""
    if base is not None and base != stored_sha256:
        raise Stale(
            f"{what} were changed by someone else since you loaded them: "
            "load them again (your text is kept) and make your change on theirs"
        )


def changes(kind: str, before: Mapping[str, BaseModel], after: Mapping[str, BaseModel]) -> str:
    """Which of `kind` a load added, changed and removed, by name ("policies changed 'Red'"),
    or "" for none."""
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    changed = [n for n in after if n in before and after[n] != before[n]]
    parts = [
        f"{word} {', '.join(repr(n) for n in names)}"
        for word, names in (("added", added), ("changed", changed), ("removed", removed))
        if names
    ]
    return f"{kind} {'; '.join(parts)}" if parts else ""
