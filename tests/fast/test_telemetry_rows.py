"""The telemetry batch's rows written on the driver's own cursor (monitor/ingest/states.py)
read back through the ORM exactly as if SQLAlchemy had written them, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from monitor.db import Store
from monitor.devices.models import Device, LocationFix
from monitor.devices.service import add_device, fix_row, note_fix
from monitor.ingest.states import insert_fixes, read_states, sqlite_time, write_states
from monitor.migrate import upgrade
from monitor.protocol import Loc

# Times with and without microseconds, and one not in UTC: the text SQLite compares must
# have one form.
WHEN = datetime(2026, 12, 6, 18, 0, 0, tzinfo=UTC)
TIMES = [WHEN, WHEN + timedelta(microseconds=7), WHEN.astimezone(timezone(timedelta(hours=2)))]


def test_sqlite_time_is_sqlalchemys_text(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'rows.db'}")
    upgrade(store)
    try:
        with store.begin() as db:
            add_device(db, "rows-1", worker_id=None)
        for at in TIMES:
            with store.begin() as db:
                db.get_one(Device, "rows-1").last_seen_at = at
            with store.session() as db:
                stored = db.execute(text("SELECT last_seen_at FROM devices")).scalar_one()
            assert stored == sqlite_time(at)
        with pytest.raises(ValueError, match="naive"):
            sqlite_time(WHEN.replace(tzinfo=None))
    finally:
        store.dispose()


def test_states_and_fixes_round_trip(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.begin() as db:
            for i in range(3):
                add_device(db, f"rows-{i}", worker_id=None)
            db.get_one(Device, "rows-2").enabled = False
        with store.begin() as db:
            states = read_states(db, {"rows-0", "rows-1", "rows-2", "nobody"})
        assert sorted(states) == ["rows-0", "rows-1", "rows-2"]
        assert states["rows-2"].enabled is False and states["rows-0"].online is False
        assert states["rows-0"].last_seen_at is None

        loc = Loc(lat=51.5, lon=-0.12, acc=5.0, src="gps")
        for i, at in enumerate(TIMES[:2]):
            s = states[f"rows-{i}"]
            s.online, s.last_seen_at, s.offline_due_at = True, at, at + timedelta(minutes=10)
            s.battery, s.charging, s.rssi, s.firmware = 50 + i, True, -70, "1.2.3"
            assert note_fix(s, at, loc)
        rows = [fix_row("rows-0", None, t, loc, 80, WHEN) for t in TIMES]
        with store.begin() as db:
            write_states(db, [states["rows-1"], states["rows-0"]])
            # Twice in one transaction, as a batch with a last will does: the second write
            # must not bring back the first's rows.
            states["rows-0"].battery = 10
            write_states(db, [states["rows-0"]])
            insert_fixes(db, rows)

        with store.session() as db:
            d0, d1 = db.get_one(Device, "rows-0"), db.get_one(Device, "rows-1")
            assert (d0.online, d0.battery, d0.charging, d0.rssi, d0.firmware) == (
                True,
                10,
                True,
                -70,
                "1.2.3",
            )
            assert d1.battery == 51
            assert d0.last_seen_at == TIMES[0] and d1.last_seen_at == TIMES[1]
            assert d1.offline_due_at == TIMES[1] + timedelta(minutes=10)
            assert (d0.last_lat, d0.last_lon, d0.last_acc, d0.last_fix_at) == (
                51.5,
                -0.12,
                5.0,
                TIMES[0],
            )
            assert db.get_one(Device, "rows-2").online is False
            fixes = db.scalars(select(LocationFix).order_by(LocationFix.id)).all()
            assert [f.device_ts for f in fixes] == TIMES
            assert all(f.device_ts.tzinfo is not None for f in fixes)
            assert [(f.lat, f.lon, f.acc, f.src, f.batt, f.received_at) for f in fixes] == [
                (51.5, -0.12, 5.0, "gps", 80, WHEN)
            ] * 3
            # SQL comparisons on the stored times agree with Python's.
            later = db.scalars(select(LocationFix.id).where(LocationFix.device_ts > TIMES[0])).all()
            assert len(later) == 1
        # A batch that fails after writing states takes its work with it, and the next one
        # still writes (PostgreSQL's staging table was made in the failed transaction).
        with pytest.raises(RuntimeError), store.begin() as db:
            states["rows-1"].battery = 1
            write_states(db, [states["rows-1"]])
            raise RuntimeError("the batch fails later")
        states["rows-1"].battery = 52
        with store.begin() as db:
            write_states(db, [states["rows-1"]])
        with store.begin() as db:
            again = read_states(db, {"rows-0", "rows-1"})
        assert again["rows-1"].battery == 52
        assert again["rows-1"].last_seen_at == TIMES[1]
        assert again["rows-0"].last_fix_at == TIMES[0]
        assert again["rows-0"].charging is True
    finally:
        store.dispose()
