"""A whole fleet registered from one file: `vigil fleet import` of N workers with one badge
each, timed on SQLite or PostgreSQL, beside two anchors measured in the same run: the
database itself storing the same rows (workers, devices, audit entries) in one bulk insert,
and the argon2 hashes of the PINs, which cost what they cost on purpose.

    python -m bench.fleet_import --devices 10000 --db sqlite
    python -m bench.fleet_import --devices 10000 --db postgresql --no-pins

What is timed is the command, in this process, from the file on disk to the credentials
file written; the store is migrated first, untimed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import insert
from typer.testing import CliRunner

from bench.harness import database
from monitor.audit.models import AuditEntry
from monitor.cli import app
from monitor.db import Store, utcnow
from monitor.devices.models import Device
from monitor.migrate import upgrade
from monitor.orgs.models import Organisation, Worker
from monitor.security import hash_device_secret, hash_pin, new_device_secret


def fleet_csv(path: Path, n: int, pins: bool) -> None:
    lines = ["name,organisation,team,cancel_pin,duress_pin,device_id,device_kind"]
    for i in range(n):
        pin = "1234,9876" if pins else ","
        lines.append(f"Worker {i:05d},Bench Trust,Team {i % 50},{pin},badge-{i:05d},badge")
    path.write_text("\n".join(lines) + "\n")


def bulk_rows(url: str, n: int) -> float:
    """The anchor: the same rows stored by the database in one bulk insert each, with the
    device secrets hashed as the import hashes them (the PINs are timed apart)."""
    store = Store(url)
    upgrade(store)
    secrets = [hash_device_secret(new_device_secret()) for _ in range(n)]
    started = time.perf_counter()
    with store.begin() as db:
        org = Organisation(name="Anchor Trust")
        db.add(org)
        db.flush()
        now = utcnow()
        db.execute(
            insert(Worker),
            [
                {"org_id": org.id, "name": f"W {i}", "cancel_pin_hash": "", "duress_pin_hash": ""}
                for i in range(n)
            ],
        )
        db.execute(
            insert(Device),
            [{"id": f"anchor-{i}", "kind": "badge", "secret_hash": secrets[i]} for i in range(n)],
        )
        db.execute(
            insert(AuditEntry),
            [
                {
                    "at": now,
                    "actor": "cli",
                    "action": a,
                    "target": f"{i}",
                    "address": "",
                    "details": {},
                }
                for i in range(n)
                for a in ("worker_added", "device_added")
            ],
        )
    store.dispose()
    return time.perf_counter() - started


def pin_hashing(n: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(lambda _: (hash_pin("1234"), hash_pin("9876")), range(n)))
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--no-pins", action="store_true", help="Workers choose their PINs later.")
    args = ap.parse_args()
    n = args.devices
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fleet = work / "fleet.csv"
        fleet_csv(fleet, n, pins=not args.no_pins)
        with database(args.db, work) as url:
            store = Store(url)
            upgrade(store)
            store.dispose()
            os.environ["VIGIL_DATABASE_URL"] = url
            os.environ["VIGIL_DATA_DIR"] = str(work / "data")
            started = time.perf_counter()
            result = CliRunner().invoke(
                app, ["fleet", "import", str(fleet), "--credentials", str(work / "creds.csv")]
            )
            took = time.perf_counter() - started
            assert result.exit_code == 0, result.output
        (work / "anchor").mkdir()
        with database(args.db, work / "anchor") as url:
            anchor = bulk_rows(url, n)
    pins = 0.0 if args.no_pins else pin_hashing(n)
    print(f"{args.db}, {n} workers with one badge each, PINs {'none' if args.no_pins else 'set'}")
    per = took / n * 1e3
    print(f"  vigil fleet import:            {took:7.1f} s  ({per:.2f} ms a device)")
    print(
        f"  anchor, bulk insert of rows:   {anchor:7.1f} s  "
        f"-> import / anchor = {took / anchor:.1f}"
    )
    if pins:
        print(
            f"  anchor, argon2 of the PINs:    {pins:7.1f} s  "
            f"({os.cpu_count()} threads) -> import / (rows + PINs) = {took / (anchor + pins):.1f}"
        )


if __name__ == "__main__":
    main()
