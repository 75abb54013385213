"""Sign-in time by outcome: a wrong password for a user who exists, a name nobody has, and
a disabled user. The three should take as long as each other (one argon2 check each), or
the time would tell which names exist.

    python -m bench.signin_timing --tries 20

The API runs in this process (FastAPI's test client, a SQLite store in a temporary folder):
what is timed is the route, not a network.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.config import Settings
from monitor.db import Store
from monitor.migrate import upgrade
from monitor.users.models import Role
from monitor.users.service import add_user, set_active

PASSWORD = "benchmark password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20, help="Sign-ins per outcome.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            secret_key="bench-" + "k" * 32,
            # No waiting between wrong passwords: each try must reach the password check.
            signin_max_failures=10 * args.tries,
        )
        store = Store(settings.sqlalchemy_url)
        upgrade(store)
        with store.begin() as db:
            add_user(db, "exists", PASSWORD, Role.OPERATOR)
            add_user(db, "disabled", PASSWORD, Role.OPERATOR)
            set_active(db, "disabled", False)
        http = TestClient(create_app(settings, store, extensions=False))
        cases = {
            "existing user, wrong password": "exists",
            "unknown name": "nobody-here",
            "disabled user": "disabled",
        }
        # Once each first: the first unknown name also makes the stand-in hash.
        for name in cases.values():
            http.post("/api/v1/auth/token", data={"username": name, "password": "x" * 12})
        times: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(args.tries):
            for label, name in cases.items():  # interleaved: drift hits all three alike
                start = time.perf_counter()
                r = http.post("/api/v1/auth/token", data={"username": name, "password": "x" * 12})
                times[label].append((time.perf_counter() - start) * 1000)
                assert r.status_code == 401, r.text
        store.dispose()
    print(f"sign-in refused, {args.tries} tries each (ms):")
    for label, ms in times.items():
        print(
            f"  {label:30} median {statistics.median(ms):6.1f}  "
            f"min {min(ms):6.1f}  max {max(ms):6.1f}"
        )


if __name__ == "__main__":
    main()
