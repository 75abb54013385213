"""The one table of words (monitor.alerts.labels): complete, served to the console, and how
the service writes counts, times and people into the record."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from escalation.states import STATUS_LABELS, NotificationStatus
from escalation.timeline import LABELS as ESCALATION_LABELS
from escalation.timeline import EntryKind
from monitor.alerts import labels
from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.users.models import Role
from tests.fast.handlers import Handlers


def test_every_stored_value_has_words() -> None:
    assert set(labels.TYPE_LABELS) == set(AlertType)
    assert set(labels.OUTCOME_LABELS) == set(Outcome)
    assert set(labels.STATE_LABELS) == set(AlertState)
    assert set(labels.ROLE_LABELS) == set(Role)
    # Escalation's entry kinds are labelled beside their enum, and reach the one table.
    assert set(ESCALATION_LABELS) == set(EntryKind)
    assert set(STATUS_LABELS) == set(NotificationStatus)
    assert labels.entry_label("notification") == "Notification"


def test_words_for_what_the_table_lacks_and_for_people() -> None:
    assert labels.entry_label("call_bridged") == "Call bridged"  # never shown raw
    assert labels.actor_label("user:ana") == "ana"
    assert labels.actor_label("system") == "Vigil"
    assert labels.actor_label("device:b-7") == "device b-7"
    assert labels.actor_label("escalation") == "Escalation"
    assert [labels.plural(n, "time") for n in (0, 1, 2)] == ["0 times", "1 time", "2 times"]
    assert labels.plural(1, "entry", "entries") == "1 entry"
    assert labels.plural(3, "entry", "entries") == "3 entries"
    at = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC)
    assert labels.moment(at) == "01:30:05 UTC on 29 March 2026"


def test_the_console_is_told_every_table(svc: Handlers) -> None:
    op = svc.user("words", Role.OPERATOR)
    got = svc.http.get("/api/v1/console/meta", headers=op).json()["labels"]
    assert got["outcome"]["worker_safe"] == "Worker safe"
    assert got["state"]["acknowledged"] == "Taken charge of"
    assert got["type"]["red"] == "Panic"
    assert got["role"]["admin"] == "Administrator"
    assert got["entry"]["raised"] == "Alert raised"
    assert got["entry"]["escalation_started"] == "Escalation started"  # escalation's, added
    assert got["trigger"]["fall"] == "fall detected"
    assert got["status"]["no-answer"] == "no answer"  # escalation's own table, added


def test_the_record_and_the_csv_say_it_in_words(svc: Handlers) -> None:
    badge, _ = svc.badge("badge-csv")
    badge.raise_alert(type="man_down", trigger="fall")
    op = svc.user("op", Role.OPERATOR)
    lead = svc.user("lead", Role.SUPERVISOR)
    (alert,) = svc.http.get("/api/v1/alerts", headers=op).json()
    r = svc.http.post(
        f"/api/v1/alerts/{alert['id']}/resolve", headers=op, json={"outcome": "worker_safe"}
    )
    assert r.status_code == 200, r.text
    timeline = svc.http.get(f"/api/v1/alerts/{alert['id']}", headers=op).json()["timeline"]
    texts = {t["kind"]: t["text"] for t in timeline}
    assert texts["raised"] == "Man down alert raised (fall detected)"
    assert texts["resolved"] == "Resolved: Worker safe"

    export = svc.http.get("/api/v1/incidents/export.csv", headers=lead).text
    (row,) = csv.DictReader(io.StringIO(export))
    assert (row["type"], row["type_label"]) == ("man_down", "Man down")
    assert (row["state"], row["state_label"]) == ("resolved", "Resolved")
    assert (row["outcome"], row["outcome_label"]) == ("worker_safe", "Worker safe")
