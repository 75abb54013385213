"""YAML that people wrote (policies, procedures, a fleet): read safely, and refused with a
reason, never a crash, when it is not YAML."""

from __future__ import annotations

from typing import Any

import yaml


class NotYaml(ValueError):
    """The text is not a YAML document Vigil can read; the message says why."""


def read_yaml(text: str) -> Any:
    """The document in `text` (None for an empty one)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NotYaml(f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        # PyYAML builds nested collections by recursion: "[[[[…" a few thousand deep would
        # otherwise end the request with a server error.
        raise NotYaml("not valid YAML: nested too deeply") from exc
