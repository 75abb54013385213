"""The refusals of places and cautions, each with the HTTP status it answers (monitor/api.py)."""

from __future__ import annotations


class PlaceRefused(ValueError):
    """What was asked cannot be stored ("field: why"); nothing was changed (422)."""


class PlaceNotFound(LookupError):
    """No such place or caution within the person's scope (404: outside it, it does not
    exist for them)."""


class PlaceForbidden(PermissionError):
    """Within scope, but not theirs to change (403)."""
