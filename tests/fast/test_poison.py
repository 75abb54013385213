"""A message the database refuses for good must not hold up the ones behind it.

The store is made to refuse certain rows with a database trigger, the way a value outside
what a column holds would: no part of Vigil is replaced.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from monitor.alerts.models import Alert, AlertEvent
from monitor.devices.models import LocationFix
from monitor.ingest.models import RefusedMessage
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until

SQLITE = {
    "alerts": "CREATE TRIGGER poison_alert BEFORE INSERT ON alerts WHEN NEW.note = 'poison' "
    "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    "locations": "CREATE TRIGGER poison_loc BEFORE INSERT ON locations WHEN NEW.acc = 666 "
    "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
}
PG = {
    "alerts": "NEW.note = 'poison'",
    "locations": "NEW.acc = 666",
}


def poison(svc: Running) -> None:
    with svc.store.begin() as db:
        if svc.store.is_postgres:
            for table, cond in PG.items():
                db.execute(
                    text(
                        f"CREATE FUNCTION poison_{table}() RETURNS trigger AS $$ BEGIN "
                        f"IF {cond} THEN RAISE EXCEPTION 'poisoned row'; END IF; "
                        "RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                )
                db.execute(
                    text(
                        f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table} "
                        f"FOR EACH ROW EXECUTE FUNCTION poison_{table}()"
                    )
                )
        else:
            for ddl in SQLITE.values():
                db.execute(text(ddl))


def test_alert_the_store_refuses_is_kept_bare_and_the_next_still_arrives(svc: Running) -> None:
    poison(svc)
    badge, _ = svc.badge("badge-p1")
    other, _ = svc.badge("badge-p2")
    bad = badge.raise_alert(type="red", note="poison")
    badge.wait_for("alert_received", alert_id=bad, timeout=15)
    good = other.raise_alert(type="red", note="fine")
    other.wait_for("alert_received", alert_id=good, timeout=10)
    with svc.store.session() as db:
        kept = db.scalar(select(Alert).where(Alert.device_alert_id == bad))
        assert kept is not None and kept.type == "red" and kept.note is None
        kinds = db.scalars(
            select(AlertEvent.kind)
            .where(AlertEvent.alert_id == kept.id)
            .where(AlertEvent.kind.not_like("escalation%"))
        ).all()
        assert kinds == ["raised", "details_dropped"]
        assert db.scalar(select(Alert.note).where(Alert.device_alert_id == good)) == "fine"


def test_location_the_store_refuses_is_refused_alone(svc: Running) -> None:
    poison(svc)
    badge, b = svc.badge("badge-p3")
    for acc in (5, 6, 666, 7, 8):
        badge.send_location(acc=acc, qos=1)
    cmd = badge.wait_for("rejected", ref="location", timeout=15)
    assert cmd.payload["reason"].startswith("could not be stored")

    def stored() -> int:
        with svc.store.session() as db:
            return (
                db.scalar(
                    select(func.count())
                    .select_from(LocationFix)
                    .where(LocationFix.device_id == b.device_id)
                )
                or 0
            )

    wait_until(lambda: stored() == 4, timeout=10, what="the four good locations")
    time.sleep(0.3)
    assert stored() == 4
    with svc.store.session() as db:
        reasons = db.scalars(
            select(RefusedMessage.reason).where(RefusedMessage.device_id == b.device_id)
        ).all()
    assert len(reasons) == 1 and reasons[0].startswith("could not be stored")
    alert_id = badge.raise_alert(type="test")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
