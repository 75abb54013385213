"""A device added to a running `vigil demo` from another terminal: the command finds the
demo's store through the data directory the banner names (and refuses, changing nothing, in
a directory with no store), and the demo's Mosquitto lets the device in with nothing
restarted; disabled, it is turned away."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from monitor.broker import free_port
from tests.support import Broker, wait_until
from tests.test_demo import _demo, _stop
from tests.test_enrolment import kept_out, let_in


def vigil(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`vigil` as a person runs it in another terminal: no VIGIL_* settings of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_device_added_from_another_terminal_reaches_the_running_demo(tmp_path: Path) -> None:
    demo_dir, elsewhere = tmp_path / "demo", tmp_path / "elsewhere"
    demo_dir.mkdir()
    elsewhere.mkdir()
    log = demo_dir / "demo.log"
    proc = _demo(demo_dir, free_port())
    try:
        text = wait_until(
            lambda: "Ctrl-C stops everything" in log.read_text() and log.read_text(),
            timeout=90,
            every=0.2,
            what="the demo's banner",
        )
        port = re.search(r"Broker:\s+mqtt://127\.0\.0\.1:(\d+)", text)
        data = re.search(r"vigil --data-dir (\S+) device add ID --worker N", text)
        assert port and data, text
        assert data[1] == str(demo_dir / "vigil-data")
        brk = Broker(demo_dir)
        brk.port = int(port[1])

        # Run where there is no store: refused with the way to the demo's, nothing made.
        lost = vigil(elsewhere, "device", "add", "my-badge", "--worker", "1")
        assert lost.returncode == 1
        assert "there is no Vigil store at" in lost.stderr and "--data-dir" in lost.stderr
        assert "Traceback" not in lost.stderr
        assert not (elsewhere / "vigil-data").exists()

        added = vigil(
            elsewhere, "--data-dir", data[1], "device", "add", "my-badge", "--worker", "1"
        )
        assert added.returncode == 0, added.stderr
        secret = added.stdout.splitlines()[1].strip()
        # Quiet: only the hint that the running demo applies it.
        assert added.stderr.startswith("A running `vigil demo`"), added.stderr
        let_in(brk, "my-badge", secret)

        listed = vigil(demo_dir, "device", "list", "--worker", "1")
        assert "my-badge" in listed.stdout and "demo-badge-001" in listed.stdout

        assert vigil(demo_dir, "device", "disable", "my-badge").returncode == 0
        kept_out(brk, "my-badge", secret)
    finally:
        code = _stop(proc)
    assert code in (0, 130), log.read_text()
