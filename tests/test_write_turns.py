"""On SQLite, this process's writers take turns: an alert's transaction goes before telemetry
batches waiting with it, and an event handler may write at commit. Commits leave the log's
checkpoints to the scheduler, and telemetry batches are short."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from monitor.config import Settings
from monitor.db import AUTOCHECKPOINT_PAGES, Store
from monitor.events import Event, Kind, MessagesRefused, emit
from monitor.migrate import upgrade


def test_a_waiting_writer_goes_before_waiting_bulk_writers(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'turns.db'}")
    upgrade(store)
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def first_batch() -> None:
        with store.begin(bulk=True) as db:
            db.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)
            order.append("batch 1")

    def write(name: str, *, bulk: bool) -> None:
        with store.begin(bulk=bulk) as db:
            db.execute(text("SELECT 1"))
            order.append(name)

    threads = [threading.Thread(target=first_batch)]
    threads[0].start()
    assert holding.wait(10)
    # Two batches queue first, then the alert.
    for name in ("batch 2", "batch 3"):
        threads.append(threading.Thread(target=write, args=(name,), kwargs={"bulk": True}))
        threads[-1].start()
    time.sleep(0.2)
    threads.append(threading.Thread(target=write, args=("alert",), kwargs={"bulk": False}))
    threads[-1].start()
    time.sleep(0.2)
    release.set()
    for t in threads:
        t.join(10)
    assert order[:2] == ["batch 1", "alert"]
    assert sorted(order[2:]) == ["batch 2", "batch 3"]
    store.dispose()


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
        with store.begin(bulk=True) as db:
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
        with store.begin(bulk=True) as db:
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
