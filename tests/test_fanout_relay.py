"""What another replica relays is made into events again (events.decode), and what cannot be
read is dropped without stopping the relay: its listening thread is the only way a replica's
consoles hear of the others' alerts."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.config import Settings
from monitor.db import Store
from monitor.events import AlertAside, AlertChanged, Event, Kind
from monitor.fanout import Fanout

AT = "2026-01-01T00:00:00+00:00"


def relayed(k: str, d: object, o: str = "other-replica") -> str:
    return json.dumps({"o": o, "k": k, "at": AT, "d": d})


def test_relayed_events_are_decoded_and_unreadable_ones_dropped(tmp_path: Path) -> None:
    store = Store(Settings(data_dir=tmp_path).sqlalchemy_url)
    heard: list[Event] = []
    store.bus.subscribe(heard.append, "", remote=True)
    fanout = Fanout(store, "here")  # not started: `_relay` is what the listening thread calls
    try:
        alert = {"id": 7, "state": "raised", "type": "red"}
        unreadable = [
            "not json",
            "[1, 2]",
            json.dumps({"o": "other-replica"}),
            relayed(Kind.ALERT_RAISED, {"no": "alert"}),
            relayed(Kind.ALERT_POSITION, ["not", "a", "dict"]),
            json.dumps({"o": "other-replica", "k": "alert.raised", "at": "yesterday", "d": {}}),
        ]
        for payload in unreadable:
            fanout._relay(payload)
        assert heard == []

        fanout._relay(relayed("visit.updated", {"visit_id": 1}))  # a kind this version lacks
        fanout._relay(relayed(Kind.DEVICE_COMMAND, {"id": 1}))  # never relayed
        fanout._relay(relayed(Kind.ALERT_RAISED, {"alert": alert}, o=fanout.origin))  # ours
        assert heard == []

        fanout._relay(relayed(Kind.ALERT_NOTE, {"alert": alert, "text": "on my way"}))
        aside = {"device_id": "d1", "alert_ids": [7], "lat": 1.0, "org_id": 2, "team_id": None}
        fanout._relay(relayed(Kind.ALERT_POSITION, aside))
        note, position = heard
        assert isinstance(note, AlertChanged) and note.remote
        assert (note.kind, note.alert_id, note.data()) == (
            Kind.ALERT_NOTE,
            7,
            {"alert": alert, "text": "on my way"},
        )
        assert isinstance(position, AlertAside) and position.remote
        assert (position.kind, position.org_id, position.team_id) == (Kind.ALERT_POSITION, 2, None)
        assert position.data() == aside
    finally:
        fanout._unsubscribe()
        store.dispose()
