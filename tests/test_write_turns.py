"""On SQLite, this process's writers take turns: an alert's transaction goes before the
escalation's and the telemetry batches waiting with it, and an event handler may write at
commit. Commits leave the log's checkpoints to the scheduler, and telemetry batches are
short."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from monitor.config import Settings
from monitor.db import AUTOCHECKPOINT_PAGES, Store, Turn
from monitor.events import Event, Kind, MessagesRefused, emit
from monitor.migrate import upgrade


def order_of_writes(
    tmp_path: Path, first: tuple[str, Turn], queued: list[tuple[str, Turn]]
) -> list[str]:
    """The order in which writers commit: `first` holds the write lock while each of
    `queued` starts, 0.2 s apart, and waits for it."""
    store = Store(f"sqlite:///{tmp_path / 'turns.db'}")
    upgrade(store)
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def write(name: str, turn: Turn, *, hold: bool = False) -> None:
        with store.begin(turn=turn) as db:
            db.execute(text("SELECT 1"))
            if hold:
                holding.set()
                release.wait(10)
            order.append(name)

    threads = [threading.Thread(target=write, args=first, kwargs={"hold": True})]
    threads[0].start()
    assert holding.wait(10)
    for name, turn in queued:
        threads.append(threading.Thread(target=write, args=(name, turn)))
        threads[-1].start()
        time.sleep(0.2)
    release.set()
    for t in threads:
        t.join(10)
    store.dispose()
    return order


def test_writers_waiting_go_by_turn(tmp_path: Path) -> None:
    # Two batches queue first, then an escalation's write, then the alert.
    order = order_of_writes(
        tmp_path,
        ("batch 1", Turn.BULK),
        [
            ("batch 2", Turn.BULK),
            ("batch 3", Turn.BULK),
            ("escalation", Turn.NORMAL),
            ("alert", Turn.URGENT),
        ],
    )
    assert order[:3] == ["batch 1", "alert", "escalation"]
    assert sorted(order[3:]) == ["batch 2", "batch 3"]


def test_an_urgent_turn_hands_the_next_to_a_waiting_writer(tmp_path: Path) -> None:
    """A device raising alerts back to back keeps the urgent worker waiting for the lock
    all the time: escalation still gets every other turn, not only the end of the flood."""
    order = order_of_writes(
        tmp_path,
        ("alert 1", Turn.URGENT),
        [
            ("batch", Turn.BULK),
            ("escalation", Turn.NORMAL),
            ("alert 2", Turn.URGENT),
            ("alert 3", Turn.URGENT),
        ],
    )
    assert order[:2] == ["alert 1", "escalation"]
    # Writers of one turn go in no set order among themselves.
    assert sorted(order[2:4]) == ["alert 2", "alert 3"]
    assert order[4:] == ["batch"]


def test_an_event_handler_writes_at_commit(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'nested.db'}")
    upgrade(store)
    with store.begin() as db:
        db.execute(text("CREATE TABLE t (x INTEGER)"))

    def handler(event: Event) -> None:
        # Runs at commit, on the committing thread, which still holds its turn.
        with store.begin() as db:
            db.execute(text("INSERT INTO t VALUES (2)"))

    store.bus.subscribe(handler, Kind.DEVICE_REFUSED)
    done = threading.Event()

    def write() -> None:
        with store.begin(turn=Turn.BULK) as db:
            db.execute(text("INSERT INTO t VALUES (1)"))
            emit(db, MessagesRefused(code="test", device_id=None))
        done.set()

    t = threading.Thread(target=write)
    t.start()
    t.join(20)
    assert done.is_set()
    with store.session() as db:
        assert sorted(db.scalars(text("SELECT x FROM t")).all()) == [1, 2]
    store.dispose()


def test_commits_leave_checkpoints_to_the_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade(store)
    with store.begin() as db:
        db.execute(text("CREATE TABLE t (x BLOB)"))
    store.checkpoint()
    # About 1,500 pages in 150 commits: SQLite's own default would have checkpointed at
    # 1,000, inside whichever commit crossed it.
    for _ in range(150):
        with store.begin(turn=Turn.BULK) as db:
            db.execute(text("INSERT INTO t VALUES (randomblob(40000))"))
    frames, copied = store.checkpoint()
    assert 1_400 < frames < AUTOCHECKPOINT_PAGES
    assert copied == frames
    with store.session() as db:
        assert db.scalar(text("SELECT count(*) FROM t")) == 150
    store.dispose()


def test_telemetry_batches_are_shorter_on_sqlite(tmp_path: Path) -> None:
    sqlite = Settings(data_dir=tmp_path)
    postgres = Settings(data_dir=tmp_path, database_url="postgresql://localhost/vigil")
    assert (sqlite.telemetry_batch_limit, postgres.telemetry_batch_limit) == (100, 500)
    # Set, it is taken as it is on either.
    assert Settings(data_dir=tmp_path, telemetry_batch_max=250).telemetry_batch_limit == 250
