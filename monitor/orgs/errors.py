"""Refusals of a change to organisations, teams and workers, each with the HTTP status the API
answers it with; the command line prints the same words."""

from __future__ import annotations


class Refused(ValueError):
    """Bad input: nothing was changed."""

    status = 422


class NotFound(Refused):
    """No such row, or none the caller may see (the same answer, so that an account cannot
    learn what exists outside its organisation or team)."""

    status = 404


class OutOfScope(Refused):
    """Something the caller may see but not do: take a worker out of their team, or change
    what all organisations share."""

    status = 403


class NameTaken(Refused):
    status = 409


class LinkGone(Refused):
    """A one-time link already used, or expired."""

    status = 410
