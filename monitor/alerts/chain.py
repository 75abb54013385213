"""The incident log's hash chain: each timeline entry carries the hash of the one before it.

Each incident (alert) has its own chain. Its first entry's `prev_hash` is a hash of the
alert's fixed identity (id, device, the device's alert id, when it was raised), so entries
cannot be moved to another incident. Every entry's `hash` covers its position, time, kind,
actor, text, data and `prev_hash`. Changing, removing or reordering an entry breaks the
chain from there on, and `vigil audit verify` names the first entry that no longer fits.

The chain is kept per incident because every writer of an incident's timeline already
holds that alert's row lock (the order escalation documents: alert first), so appending
needs no lock shared by all alerts. Removing a whole incident, or the newest entries of one,
leaves a chain that is still consistent: `verify` prints a digest of every chain's head,
to be recorded outside the database, so that a later digest can be compared with it.

The format below is v1. It is a proof format: existing hashes were computed with it, so it
must never change; a new format would be a new version, with the old one still verified.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

from monitor.alerts.models import Alert, AlertEvent

VERSION = "vigil-incident-v1"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def genesis(alert_id: int, device_id: str, device_alert_id: str | None, raised_at: datetime) -> str:
    """The `prev_hash` of an incident's first entry."""
    ident = [VERSION, alert_id, device_id, device_alert_id or "", _when(raised_at)]
    return hashlib.sha256(_canonical(ident)).hexdigest()


def _start(alert: Alert) -> str:
    return genesis(alert.id, alert.device_id, alert.device_alert_id, alert.raised_at)


def entry_hash(
    prev_hash: str,
    alert_id: int,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    text: str,
    data: dict[str, Any],
) -> str:
    body = [VERSION, prev_hash, alert_id, seq, _when(at), kind, actor, text, data]
    return hashlib.sha256(_canonical(body)).hexdigest()


def _canonical(value: Any) -> bytes:
    # Sorted keys and no spaces: the same content always gives the same bytes, whichever
    # database stored the JSON and in what order it hands the keys back.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _heads(db: Session) -> dict[int, tuple[int, str]]:
    """Chain heads (seq, hash) appended in this session's current transaction."""
    heads: dict[int, tuple[int, str]] = db.info.setdefault("chain_heads", {})
    return heads


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(db: Session, transaction: SessionTransaction) -> None:
    # Every flush runs in a subtransaction of its own; its end changes nothing stored, and
    # forgetting there would cost the next entry the lock and look-up again.
    if transaction.origin is SessionTransactionOrigin.SUBTRANSACTION:
        return
    # A head remembered from a transaction that ended may since have moved on (committed
    # by another writer) or never have been stored (rolled back, a savepoint's included):
    # read it again next time. A lock taken in a savepoint goes with it: take it again.
    db.info.pop("chain_heads", None)
    db.info.pop("chain_held", None)


def held(db: Session, alert: Alert) -> None:
    """Note that this transaction holds `alert`'s row lock, taken by the caller's query:
    its next entry reads the head without locking the alert again (a round trip off the
    escalation's start and every step)."""
    held_ids: set[int] = db.info.setdefault("chain_held", set())
    held_ids.add(alert.id)


def begin(db: Session, alert: Alert) -> None:
    """Note that `alert` was inserted by this transaction: its chain is empty, so its first
    entry needs neither the lock nor the look-up (two round trips off the alert path)."""
    _heads(db)[alert.id] = (0, _start(alert))


def append(db: Session, alert: Alert, entry: AlertEvent) -> None:
    """Give `entry` its place at the end of `alert`'s chain, and add it to the session."""
    heads = _heads(db)
    head = heads.get(alert.id)
    if head is None:
        # Lock the alert: two writers appending to one incident at once would otherwise
        # both read the same head. (SQLite writes one transaction at a time anyway.)
        if alert.id not in db.info.get("chain_held", ()):
            db.execute(select(Alert.id).where(Alert.id == alert.id).with_for_update())
        last = db.execute(
            select(AlertEvent.seq, AlertEvent.hash)
            .where(AlertEvent.alert_id == alert.id)
            .order_by(AlertEvent.seq.desc())
            .limit(1)
        ).first()
        head = (0, _start(alert)) if last is None else (last.seq, last.hash)
    seq, prev = head[0] + 1, head[1]
    entry.seq, entry.prev_hash = seq, prev
    entry.hash = entry_hash(
        prev, alert.id, seq, entry.at, entry.kind, entry.actor, entry.text, entry.data
    )
    heads[alert.id] = (seq, entry.hash)
    db.add(entry)


@dataclass
class Verdict:
    incidents: int
    entries: int
    # sha256 over every incident's (id, entries, head hash), in id order.
    digest: str
    broken: str | None = None


def verify(db: Session) -> Verdict:
    """Check every incident's chain from its genesis; stop at the first entry that does not
    fit, and say which and why."""
    digest = hashlib.sha256(VERSION.encode())
    incidents = entries = 0
    for alert, events in _incidents(db):
        incidents += 1
        prev = _start(alert)
        for expected_seq, ev in enumerate(events, start=1):
            entries += 1
            where = f"alert {alert.id}, entry {expected_seq} (row {ev.id}, {ev.kind})"
            if ev.seq != expected_seq:
                problem = f"is numbered {ev.seq}: entry {expected_seq} is missing"
                return Verdict(incidents, entries, "", f"{where} {problem}")
            if ev.prev_hash != prev:
                return Verdict(
                    incidents, entries, "", f"{where} does not follow the entry before it"
                )
            want = entry_hash(
                prev, alert.id, ev.seq, ev.at, ev.kind, ev.actor, ev.text, ev.data or {}
            )
            if ev.hash != want:
                return Verdict(incidents, entries, "", f"{where} was changed after it was written")
            prev = want
        digest.update(_canonical([alert.id, len(events), prev]))
    return Verdict(incidents, entries, digest.hexdigest())


def _incidents(db: Session) -> Iterator[tuple[Alert, list[AlertEvent]]]:
    """Each alert with its entries in chain order, a bounded batch of alerts at a time."""
    after = 0
    while True:
        alerts = db.scalars(select(Alert).where(Alert.id > after).order_by(Alert.id).limit(500))
        batch = list(alerts)
        if not batch:
            return
        by_alert: dict[int, list[AlertEvent]] = {a.id: [] for a in batch}
        for ev in db.scalars(
            select(AlertEvent)
            .where(AlertEvent.alert_id.in_(by_alert))
            .order_by(AlertEvent.alert_id, AlertEvent.seq, AlertEvent.id)
        ):
            by_alert[ev.alert_id].append(ev)
        for alert in batch:
            yield alert, by_alert[alert.id]
        after = batch[-1].id
        db.expunge_all()
