"""A device's durable state: the store-and-forward alert outbox and the message counter.

With a state directory it lives in `<dir>/<device_id>.json`, so a restarted simulator resends
alerts that were never confirmed and keeps `seq` increasing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# seq values are reserved on disk in blocks, so a crash never reuses one and the file is
# written once per block, not once per message.
SEQ_BLOCK = 1000


@dataclass
class PendingAlert:
    alert_id: str
    payload: bytes  # resends are byte-identical copies of the first message
    last_sent: float | None = None  # time.monotonic(); None means "send at the next chance"


class DeviceState:
    def __init__(self, device_id: str, state_dir: Path | None) -> None:
        self._lock = threading.Lock()
        self._path = None if state_dir is None else Path(state_dir) / f"{device_id}.json"
        self._seq = 0
        self._seq_limit = 0
        self._outbox: dict[str, PendingAlert] = {}
        if self._path is not None:
            self._load(self._path)

    @property
    def path(self) -> Path | None:
        return self._path

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            if self._path is not None and self._seq >= self._seq_limit:
                self._seq_limit = self._seq + SEQ_BLOCK
                self._write()
            return self._seq

    def add_alert(self, alert_id: str, payload: bytes) -> PendingAlert:
        with self._lock:
            pending = self._outbox.setdefault(alert_id, PendingAlert(alert_id, payload))
            self._write()
            return pending

    def remove_alert(self, alert_id: str) -> bool:
        with self._lock:
            if self._outbox.pop(alert_id, None) is None:
                return False
            self._write()
            return True

    def pending_ids(self) -> list[str]:
        with self._lock:
            return list(self._outbox)

    def mark_all_unsent(self) -> None:
        """After a reconnect everything pending goes out again at once."""
        with self._lock:
            for pending in self._outbox.values():
                pending.last_sent = None

    def take_due(self, now: float, retry_s: float) -> list[PendingAlert]:
        """The alerts to (re)send now, marked as sent at `now`."""
        with self._lock:
            due = [
                p
                for p in self._outbox.values()
                if p.last_sent is None or now - p.last_sent >= retry_s
            ]
            for pending in due:
                pending.last_sent = now
            return due

    def seconds_to_next_due(self, now: float, retry_s: float) -> float | None:
        with self._lock:
            waits = [
                0.0 if p.last_sent is None else p.last_sent + retry_s - now
                for p in self._outbox.values()
            ]
        return max(0.0, min(waits)) if waits else None

    def save(self) -> None:
        """Write the exact counter, as a clean shutdown can, so the next run goes on from it."""
        with self._lock:
            self._seq_limit = self._seq + 1
            self._write()

    def _load(self, path: Path) -> None:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable state file (%s); starting empty", path, exc)
            return
        self._seq = max(0, int(data.get("seq_next", 1)) - 1)
        self._seq_limit = self._seq + 1
        for item in data.get("outbox", []):
            alert_id = str(item["id"])
            self._outbox[alert_id] = PendingAlert(alert_id, str(item["payload"]).encode())

    def _write(self) -> None:
        if self._path is None:
            return
        data = {
            "seq_next": self._seq_limit,
            "outbox": [
                {"id": p.alert_id, "payload": p.payload.decode()} for p in self._outbox.values()
            ],
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        # Replace in one step so a crash mid-write leaves the old outbox, never half of one.
        os.replace(tmp, self._path)
