"""Telling a passing store failure (retry, the message waits) from a permanent one (the
message can never be stored as it is, and must not hold up the ones behind it)."""

from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Connection lost, database locked or restarting, pool exhausted: the same transaction
# succeeds later. Anything else (a value the database refuses, a bug) fails every time.
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def is_transient(err: BaseException) -> bool:
    return isinstance(err, TRANSIENT)


def describe(err: BaseException) -> str:
    return f"could not be stored ({type(err).__name__})"
