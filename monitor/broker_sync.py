"""Keeps the broker's password file for devices in step with the registry: rewritten and
reloaded as soon as device credentials change, in this process or any other (the `vigil` CLI,
another replica).

Every change to credentials bumps one version in the store in its own transaction
(`devices.service.credentials_changed`); the scheduler compares that one row with the version
last written, every tick, so nothing is rewritten while nothing changes. The file is written
only if its text differs, and the broker told to reload only then: replicas that share the
broker's files write and signal it once between them for each change.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from monitor import broker
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import CredentialsVersion

log = logging.getLogger(__name__)

# After a failure (the broker's pid file unreadable, the reload command failing), wait this
# long before trying again, rather than every tick.
RETRY_S = 5.0


class BrokerSync:
    def __init__(
        self,
        store: Store,
        directory: Path,
        *,
        pid_file: Path | None = None,
        reload_command: str = "",
    ) -> None:
        self.store = store
        self.directory = directory
        self.pid_file = pid_file
        self.reload_command = shlex.split(reload_command)
        self._applied: int | None = None
        self._reload_owed = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> BrokerSync | None:
        if settings.broker_dir is None:
            return None
        return cls(
            store,
            settings.broker_dir,
            pid_file=settings.broker_pid_file,
            reload_command=settings.broker_reload_command,
        )

    def check(self) -> bool:
        """Bring the broker up to the registry if its credentials changed since the last
        call; True if the broker was told to reload. Called every scheduler tick, and at once
        by what changed credentials in this process."""
        with self._lock:
            if time.monotonic() < self._retry_at:
                return False
            try:
                return self._check()
            except Exception:
                self._retry_at = time.monotonic() + RETRY_S
                log.exception("could not bring the broker's password file up to date; retrying")
                return False

    def _check(self) -> bool:
        with self.store.session() as db:
            # The version first: whatever committed before it is in the lines read after it.
            version = db.scalar(select(CredentialsVersion.version))
            if version == self._applied and not self._reload_owed:
                return False
            if broker.write_device_passwords(db, self.directory):
                self._reload_owed = True
        reloaded = False
        if self._reload_owed:
            self._reload()
            self._reload_owed = False
            reloaded = True
            log.info("device credentials changed: the broker reloads its password file")
        self._applied = version
        return reloaded

    def _reload(self) -> None:
        if self.pid_file is not None:
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGHUP)
        elif self.reload_command:
            subprocess.run(self.reload_command, check=True, timeout=5, capture_output=True)
        # Neither: the file is kept up to date, and the broker is reloaded by whoever runs it.


def apply_now(app_state: Any) -> None:
    """Bring the broker up to the registry before answering a request that changed device
    credentials (`app.state.broker_sync`, the scheduler's): a device given a secret connects
    at once, and one disabled is refused from the moment the person is told. Without
    VIGIL_BROKER_DIR there is nothing to do: the broker is kept by whoever runs it."""
    sync: BrokerSync | None = getattr(app_state, "broker_sync", None)
    if sync is not None:
        sync.check()
