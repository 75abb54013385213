"""The database: engine set-up for SQLite and PostgreSQL, the declarative base, sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Interval,
    MetaData,
    SQLColumnExpression,
    create_engine,
    event,
    func,
    literal,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from monitor.events import EventBus, flush_pending, pending
from monitor.health import Health, cause_of

# The primary keys are INTEGER, which PostgreSQL keeps in 32 bits: an id from outside (a URL,
# a token) beyond this is refused as a bad id, never passed on to fail in the database.
MAX_ROW_ID = 2**31 - 1

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


READ_ONLY = "vigil_read_only"


AUTOCHECKPOINT_PAGES = 10_000


class Turn(IntEnum):
    """Who goes first for SQLite's one write lock: the lower, the sooner."""

    URGENT = 0  # alerts, cancels, visits: what a worker in danger waits for
    NORMAL = 1  # escalation, the console, the API, the scheduler
    BULK = 2  # telemetry batches, purges: may wait for everyone else


class WriteTurns:
    """Whose turn it is to write to SQLite, within this process, by `Turn`.

    SQLite has one writer at a time. Left to its busy handler, a writer that finds the lock
    taken sleeps in growing steps and tries again, and under back-to-back telemetry batches
    an alert lost the lock to batch after batch for seconds. Here writers queue on a
    condition instead, and a writer waits while anyone of an earlier turn is waiting: an
    alert no longer waits behind every escalation, send record and request that a device
    raising hundreds of alerts a second sets going, and a bulk writer waits for everyone
    else. One exception, so that such a flood cannot hold escalation up for as long as it
    lasts: an urgent turn that ends while a normal writer waits hands the next turn to it.
    An alert waits for the write under way and at most one more. A thread already holding
    the turn may begin again (an event handler run at commit).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._owner_turn = Turn.NORMAL
        self._waiting = [0] * len(Turn)  # writers waiting, by turn
        self._handed: Turn | None = None  # the next turn is kept for a writer of this one

    def _may_go(self, turn: Turn) -> bool:
        if self._owner is not None:
            return False
        if self._handed is not None and self._waiting[self._handed]:
            return turn is self._handed
        return not any(self._waiting[:turn])

    @contextmanager
    def turn(self, turn: Turn) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._waiting[turn] += 1
                try:
                    while not self._may_go(turn):
                        self._cond.wait()
                finally:
                    self._waiting[turn] -= 1
                if self._handed is turn:
                    self._handed = None
                self._owner, self._depth, self._owner_turn = me, 1, turn
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    if self._owner_turn is Turn.URGENT and self._waiting[Turn.NORMAL]:
                        self._handed = Turn.NORMAL
                    self._cond.notify_all()


def utcnow() -> datetime:
    return datetime.now(UTC)


def shifted(
    db: Session, column: SQLColumnExpression[datetime], by: timedelta
) -> ColumnElement[Any]:
    """`column` moved by `by`, in SQL, on either database: SQLite has no interval type, and
    keeps a UTCDateTime as text that compares in time order (to the millisecond here)."""
    if db.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{by.total_seconds():+.3f} seconds")
    # An interval: bound as the column's own type, a timedelta fails UTCDateTime's check.
    return column + literal(by, Interval())


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str) -> Engine:
    """An engine tuned for Vigil's access pattern on either database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
            # Let SQLAlchemy issue BEGIN itself so a write transaction takes the lock at once
            # (BEGIN IMMEDIATE) instead of failing later on a read-to-write upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # A checkpoint run at commit holds the write lock while it copies the log into
            # the database, and whoever commits then (an alert, as likely as not) waits for
            # it: the scheduler checkpoints instead (`Store.checkpoint`). Left to commits only
            # past a log of 10,000 pages (40 MB), for a process that runs no scheduler.
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            cur.close()
            # SQLite's own lower() folds only ASCII letters: searches must match "Élodie" when
            # "élodie" is typed, as they do on PostgreSQL with a UTF-8 locale.
            dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Readers begin deferred and never block a writer (WAL); writers take the lock at
            # once, so they queue instead of failing on a read-to-write upgrade.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Store:
    """The engine, a session factory, and the bus that committed changes are announced on."""

    def __init__(self, url: str, bus: EventBus | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.bus = bus or EventBus()
        # How its writes have been going: every write reports through `begin`.
        self.health = Health()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        # PostgreSQL has writers enough; SQLite one, which this process's writers take turns at.
        self._turns = WriteTurns() if self.engine.dialect.name == "sqlite" else None

        @event.listens_for(self._sessions, "after_commit")
        def _publish(session: Session) -> None:
            flush_pending(session, self.bus)

        @event.listens_for(self._sessions, "after_rollback")
        def _drop(session: Session) -> None:
            pending(session).clear()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> Session:
        """A session for reading (on SQLite it never holds the write lock)."""
        return self._readers()

    @contextmanager
    def begin(self, *, turn: Turn = Turn.NORMAL) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error;
        on SQLite, its `turn` says who it goes before for the write lock (WriteTurns)."""
        if self._turns is None:
            with self._sessions() as db, db.begin():
                yield db
        else:
            with self._turns.turn(turn), self._sessions() as db, db.begin():
                yield db
        # A commit clears the failure this thread reported, if any: a worker that was
        # retrying is well again once its write goes through.
        self.health.store_ok()

    def probe(self, max_age: float = 0.0) -> None:
        """Commit a write that changes nothing, unless one is under way or one ended within
        `max_age` s, and report how it went to `health`. A failure of the store is not
        raised."""
        if not self.health.start_probe(max_age):
            return
        try:
            with self.begin() as db:
                if self.is_postgres:
                    # A transaction id makes the commit a record in the log, flushed to disk.
                    db.execute(text("SELECT txid_current()"))
                else:
                    # The header's application number, written back as it is.
                    version = int(db.execute(text("PRAGMA user_version")).scalar_one())
                    db.execute(text(f"PRAGMA user_version = {version}"))
        except Exception as err:
            if cause_of(err) is None:
                raise
            # One name whichever thread probed (the scheduler, a request): the latest says.
            self.health.store_failed(err, "probe")
        else:
            self.health.store_ok("probe")
        finally:
            self.health.end_probe()

    def checkpoint(self) -> tuple[int, int]:
        """Copy SQLite's write-ahead log into the database without waiting for, or holding
        up, readers and writers: (frames in the log, frames copied). PostgreSQL: (0, 0)."""
        if self.is_postgres:
            return 0, 0
        raw = self.engine.raw_connection()
        try:
            # On the driver's connection: SQLAlchemy's would begin a write transaction first.
            cur = raw.cursor()
            _busy, log_frames, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cur.close()
        finally:
            raw.close()
        return log_frames, copied

    def dispose(self) -> None:
        self.engine.dispose()
