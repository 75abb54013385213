"""A telemetry batch's rows, on the database driver's own cursor: device states read and written,
position fixes inserted.

A batch touches hundreds of devices and stores hundreds of fixes. Through SQLAlchemy, the
per-row work around the statements (parameter dictionaries, a bind processor for each
value, result processors, pipelined statements one per device) cost more of the service's
CPU than everything else a location does. Here a batch is three statements whose rows are
plain tuples: one read, one write (on PostgreSQL, a single `UPDATE ... FROM unnest`), and
the fixes (`COPY` on PostgreSQL, one `executemany` on SQLite). They run on the session's
connection, inside its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, cast

import psycopg
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.orm import Session

from monitor.devices.models import Device, LocationFix
from monitor.devices.service import FIX_COLUMNS


@dataclass(slots=True)
class DeviceState:
    """What a batch reads and changes of one device, written back in one statement."""

    id: str
    worker_id: int | None
    enabled: bool
    online: bool
    heartbeat_interval_s: int
    last_seen_at: datetime | None
    offline_due_at: datetime | None
    battery: int | None
    charging: bool | None
    rssi: int | None
    firmware: str | None
    last_lat: float | None
    last_lon: float | None
    last_acc: float | None
    last_fix_at: datetime | None
    changed: bool = False


# The columns read are the dataclass's fields; those written are the ones a batch changes.
READ = tuple(f.name for f in fields(DeviceState) if f.name != "changed")
WRITTEN = (
    "online",
    "last_seen_at",
    "offline_due_at",
    "battery",
    "charging",
    "rssi",
    "firmware",
    "last_lat",
    "last_lon",
    "last_acc",
    "last_fix_at",
)
_written = attrgetter(*WRITTEN)
_TIMES = frozenset({"last_seen_at", "offline_due_at", "last_fix_at", "device_ts", "received_at"})
# Where the datetimes are in a written state's row and in a fix's row.
_WRITTEN_TIMES = tuple(i for i, name in enumerate(WRITTEN) if name in _TIMES)
_FIX_TIMES = tuple(i for i, name in enumerate(FIX_COLUMNS) if name in _TIMES)
# The staging table's column types are the devices table's own.
_PG = PGDialect_psycopg()  # type: ignore[no-untyped-call]
_PG_TYPES = {name: Device.__table__.c[name].type.compile(dialect=_PG) for name in WRITTEN}
DEVICES = Device.__tablename__
FIXES = LocationFix.__tablename__

# The statements, made once from the names above; every value is a bound parameter.
_COLUMNS = ", ".join(READ)
PG_READ = f"SELECT {_COLUMNS} FROM {DEVICES} WHERE id = ANY(%s)"  # noqa: S608
SQLITE_READ = f"SELECT {_COLUMNS} FROM {DEVICES} WHERE id IN "  # noqa: S608  (+ "(?, ...)")
PG_LOCK = f"SELECT 1 FROM {DEVICES} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"  # noqa: S608
# The new states go in by COPY to a table of the connection's own, then one UPDATE joins it.
STAGED = "device_states_batch"
PG_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} (id text"
    f"{''.join(f', {n} {_PG_TYPES[n]}' for n in WRITTEN)}) ON COMMIT DELETE ROWS"
)
PG_STAGE_COPY = f"COPY {STAGED} (id, {', '.join(WRITTEN)}) FROM STDIN"
PG_WRITE = (
    f"UPDATE {DEVICES} AS d SET {', '.join(f'{n} = v.{n}' for n in WRITTEN)}"  # noqa: S608
    f" FROM {STAGED} AS v WHERE d.id = v.id; DELETE FROM {STAGED}"
)
SQLITE_WRITE = f"UPDATE {DEVICES} SET {', '.join(f'{n} = ?' for n in WRITTEN)} WHERE id = ?"  # noqa: S608
PG_COPY = f"COPY {FIXES} ({', '.join(FIX_COLUMNS)}) FROM STDIN"
SQLITE_INSERT = (
    f"INSERT INTO {FIXES} ({', '.join(FIX_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' * len(FIX_COLUMNS))})"
)


def _driver(db: Session) -> tuple[Any, bool]:
    """The DBAPI connection of the session's transaction, and whether it is PostgreSQL's."""
    conn = db.connection()
    return conn.connection.driver_connection, conn.dialect.name == "postgresql"


# SQLite keeps UTC datetimes as naive text, in SQLAlchemy's format for its DATETIME type
# (always six digits of microseconds: the text is compared in SQL, so the form must be the
# same everywhere). tests/fast/test_telemetry_rows.py holds the two to each other.
def sqlite_time(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is not UTC:
        if at.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        at = at.astimezone(UTC)
    return at.isoformat(" ", "microseconds")[:26]  # without "+00:00"


def _sqlite_row(row: tuple[Any, ...], times: tuple[int, ...]) -> list[Any]:
    values = list(row)
    for i in times:
        values[i] = sqlite_time(values[i])
    return values


def _read_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return cast(datetime, value).astimezone(UTC)


def read_states(db: Session, ids: set[str]) -> dict[str, DeviceState]:
    if not ids:
        return {}
    driver, pg = _driver(db)
    cur = driver.cursor()
    if pg:
        cur.execute(PG_READ, [list(ids)])
    else:
        cur.execute(SQLITE_READ + f"({', '.join('?' * len(ids))})", list(ids))
    states = {}
    for row in cur.fetchall():
        d = DeviceState(*row)
        # SQLite hands back 0/1 and text where PostgreSQL hands back booleans and datetimes.
        d.enabled, d.online = bool(d.enabled), bool(d.online)
        if d.charging is not None:
            d.charging = bool(d.charging)
        d.last_seen_at = _read_time(d.last_seen_at)
        d.offline_due_at = _read_time(d.offline_due_at)
        d.last_fix_at = _read_time(d.last_fix_at)
        states[d.id] = d
    cur.close()
    return states


def write_states(db: Session, states: list[DeviceState]) -> None:
    if not states:
        return
    # In the order of their ids: batches of other processes lock the same rows in the same
    # order, so they wait for each other instead of deadlocking.
    states = sorted(states, key=lambda d: d.id)
    driver, pg = _driver(db)
    cur = driver.cursor()
    if pg:
        ids = [d.id for d in states]
        # The rows are locked first, in order; the update then finds them held.
        cur.execute(PG_LOCK, [ids])
        # Every time: a table made in a transaction that then failed is gone with it. When
        # it exists this is a notice, without a write to the catalogue.
        cur.execute(PG_STAGE)
        with cur.copy(PG_STAGE_COPY) as copy:
            for d in states:
                copy.write_row((d.id, *_written(d)))
        # Emptied in the same round trip: a batch may write states twice (a last will).
        cur.execute(PG_WRITE)
    else:
        cur.executemany(
            SQLITE_WRITE, [_sqlite_row((*_written(d), d.id), _WRITTEN_TIMES) for d in states]
        )
    cur.close()
    for d in states:
        d.changed = False


def insert_fixes(db: Session, rows: list[tuple[Any, ...]]) -> None:
    """Store `devices.service.fix_row` rows: with COPY on PostgreSQL, one `executemany`
    elsewhere."""
    driver, pg = _driver(db)
    if pg:
        # COPY spares the service rendering a 500-row INSERT and PostgreSQL parsing it.
        pg_driver = cast(psycopg.Connection[Any], driver)
        with (
            pg_driver.cursor() as cur,
            cur.copy(PG_COPY) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    converted = [_sqlite_row(row, _FIX_TIMES) for row in rows]
    cur = driver.cursor()
    cur.executemany(SQLITE_INSERT, converted)
    cur.close()
