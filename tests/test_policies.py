"""Policies and contacts: the YAML format, errors that name the field, `vigil policy`, the API,
and the webhook channel with its signature."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from escalation.policies import DEFAULT_POLICY_FILE, PolicyError, parse_file
from escalation.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitor.users.models import Role
from tests.escalation_support import (
    CONTACTS,
    alert_pk,
    escalating,
    notification_to,
    timeline,
)
from tests.support import Broker, wait_until

ROOT = Path(__file__).parent.parent

GOOD = (
    CONTACTS
    + """
policies:
  - name: Red
    alert_types: [red]
    repeat: 2
    steps:
      - channel: console
      - {after: 90s, channel: sms, to: [backup, Duty manager]}
      - {after: 2m, channel: dispatch, to: [Emergency dispatch]}
"""
)


def test_the_default_policy_in_docs_is_the_one_vigil_ships_and_it_is_valid() -> None:
    assert (ROOT / "docs" / "default-policy.yaml").resolve() == DEFAULT_POLICY_FILE.resolve()
    parsed = parse_file(DEFAULT_POLICY_FILE.read_text())
    names = {p.name for p in parsed.policies}
    assert names == {"Panic and duress", "Worker may be hurt", "Device offline", "Test alerts"}
    covered = {t for p in parsed.policies for t in p.alert_types}
    assert covered == {"red", "duress", "man_down", "no_motion", "visit_overdue"} | {
        "device_offline",
        "test",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("after: 90s", "after: soon"), "policies[0].steps[1].after: Value error, a number"),
        (("channel: console", "chanel: console"), "policies[0].steps[0].chanel: Extra inputs"),
        (("[red]", "[red, fire]"), "policies[0].alert_types[1]: Input should be"),
        (("repeat: 2", "repeat: 99"), "policies[0].repeat: Input should be less than"),
        (("Duty manager]", "Nobody]"), "policies[0] (Red).steps[1].to[1]: no contact named"),
        (("to: [Emergency dispatch]", "to: [worker]"), "steps[2].to[0]: dispatch goes to"),
        (('phone: "+15005550102"', 'phone: "07700 900"'), "contacts[1].phone: a phone number with"),
        (("channel: console", "{channel: console, to: [backup]}"), "no recipients"),
        (("  - name: Duty manager", "  - name: Housing backup"), "'Housing backup' appears twice"),
        (("policies:", "policies: ["), "not valid YAML"),
    ],
)
def test_a_bad_file_is_refused_with_the_field_named(change: tuple[str, str], message: str) -> None:
    bad = GOOD.replace(*change, 1)
    assert bad != GOOD
    with pytest.raises(PolicyError) as info:
        parse_file(bad)
    assert message in str(info.value)


def test_a_repeating_policy_must_take_time() -> None:
    quick = GOOD.replace("after: 90s", "after: 1").replace("after: 2m", "after: 1")
    with pytest.raises(PolicyError) as info:
        parse_file(quick)
    assert "policies[0] (Red).repeat: a policy that repeats must wait at least 10 s" in str(
        info.value
    )
    assert parse_file(quick.replace("repeat: 2", "repeat: 0"))


def test_durations_are_seconds_or_units() -> None:
    steps = parse_file(GOOD).policies[0].steps
    assert [s.after for s in steps] == [0, 90, 120]


def test_vigil_policy_load_dump_and_check(vigil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "policy.yaml"
    good.write_text(GOOD)
    assert "3 contacts and 1 policies" in vigil("policy", "load", str(good)).output
    dumped = vigil("policy", "dump").output
    back, loaded = parse_file(dumped), parse_file(GOOD)
    assert back.policies == loaded.policies
    assert sorted(back.contacts, key=lambda c: c.name) == sorted(
        loaded.contacts, key=lambda c: c.name
    )

    # A bad file changes nothing, and the error names the field and the file.
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("after: 2m", "after: -5"))
    out = vigil("policy", "load", str(bad), ok=False).output
    assert "bad.yaml" in out and "policies[0].steps[2].after" in out
    assert vigil("policy", "dump").output == dumped
    assert "steps[2].after" in vigil("policy", "check", str(bad), ok=False).output
    assert "valid" in vigil("policy", "check", str(good)).output

    # load replaces everything: a file with one policy leaves one policy.
    small = tmp_path / "small.yaml"
    small.write_text("policies:\n  - {name: Only, steps: [{channel: console}]}\n")
    vigil("policy", "load", str(small))
    out_file = tmp_path / "out.yaml"
    vigil("policy", "dump", "--output", str(out_file))
    again = parse_file(out_file.read_text())
    assert [p.name for p in again.policies] == ["Only"] and again.contacts == []


def test_supervisors_edit_policies_through_the_api(
    svc: Any,
) -> None:
    ops = svc.user("op-p1")
    boss = svc.user("sup-p1", Role.SUPERVISOR)
    contact = {"name": "Duty manager", "phone": "+15005550102"}
    policy = {
        "name": "Red",
        "alert_types": ["red"],
        "steps": [
            {"channel": "console"},
            {"after": 30, "channel": "voice", "to": ["Duty manager"]},
        ],
    }
    assert svc.http.get("/api/v1/escalation/policies", headers=ops).status_code == 403
    assert (
        svc.http.put("/api/v1/escalation/contacts/x", json=contact, headers=ops).status_code == 403
    )
    # A policy naming a contact that does not exist yet is refused, with the reason.
    r = svc.http.put("/api/v1/escalation/policies/Red", json=policy, headers=boss)
    assert r.status_code == 422 and "no contact named 'Duty manager'" in r.json()["detail"]
    r = svc.http.put("/api/v1/escalation/contacts/Duty manager", json=contact, headers=boss)
    assert r.status_code == 200, r.text
    assert (
        svc.http.put("/api/v1/escalation/policies/Red", json=policy, headers=boss).status_code
        == 200
    )
    listed = svc.http.get("/api/v1/escalation/policies", headers=boss).json()
    assert [p["name"] for p in listed] == ["Red"] and listed[0]["steps"][1]["after"] == 30

    bad = {**policy, "steps": [{"after": 5, "channel": "pager"}]}
    r = svc.http.put("/api/v1/escalation/policies/Red", json=bad, headers=boss)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-3:] == ["steps", 0, "channel"]
    r = svc.http.put("/api/v1/escalation/policies/Other", json=policy, headers=boss)
    assert r.status_code == 422 and "names policy 'Red'" in r.json()["detail"]
    extra = {**policy, "colour": "red"}
    assert (
        svc.http.put("/api/v1/escalation/policies/Red", json=extra, headers=boss).status_code == 422
    )
    # A contact a policy still calls cannot be deleted, or lose the phone it is called on.
    assert (
        svc.http.delete("/api/v1/escalation/contacts/Duty manager", headers=boss).status_code == 409
    )
    r = svc.http.put(
        "/api/v1/escalation/contacts/Duty manager", json={"name": "Duty manager"}, headers=boss
    )
    assert r.status_code == 422 and "has no phone number for voice" in r.json()["detail"]
    assert svc.http.delete("/api/v1/escalation/policies/Red", headers=boss).status_code == 204
    assert (
        svc.http.delete("/api/v1/escalation/contacts/Duty manager", headers=boss).status_code == 204
    )
    assert svc.http.delete("/api/v1/escalation/policies/Red", headers=boss).status_code == 404


class _Receiver(BaseHTTPRequestHandler):
    """A dispatch system's webhook endpoint that checks Vigil's signature as documented."""

    secret = ""
    got: list[dict[str, Any]] = []
    answers: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers[TIMESTAMP_HEADER]
        valid = self.headers[SIGNATURE_HEADER] == sign(self.secret, stamp, body)
        fresh = abs(time.time() - int(stamp)) < 300
        code = self.answers.pop(0) if self.answers else 204
        self.got.append({"valid": valid and fresh, "json": json.loads(body), "code": code})
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.got, _Receiver.answers = [], [503]  # the first delivery fails; it is retried
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/vigil"
    server.shutdown()
    server.server_close()


def test_a_webhook_step_posts_a_signed_summary(
    db_url: str,
    mqtt_broker: Broker,
    tmp_path: Path,
    receiver: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    # As a chat service's webhook URL: its path is the credential, and stays out of the log.
    receiver += "/T0AAA/B0BBB/hook-secret-path"
    contacts = f"""
  - name: Regional centre
    webhook: "{receiver}"
"""
    steps = """
policies:
  - name: Hook
    steps:
      - {channel: webhook, to: [Regional centre]}
"""
    with escalating(
        tmp_path, db_url, mqtt_broker, None, steps, contacts=contacts, webhook_secret="s3cret"
    ) as svc:
        _Receiver.secret = "s3cret"
        badge, _ = svc.badge("badge-p2", name="Lena Fox")
        pk = alert_pk(svc, badge.raise_alert(type="man_down"))
        wait_until(
            lambda: notification_to(svc, pk, receiver).status == "delivered",
            timeout=10,
            what="the webhook delivered",
        )
        assert [g["code"] for g in _Receiver.got] == [503, 204]
        assert all(g["valid"] for g in _Receiver.got)
        payload = _Receiver.got[-1]["json"]
        assert payload["type"] == "vigil.alert.escalation"
        assert payload["alert"]["id"] == pk and payload["alert"]["type"] == "man_down"
        assert payload["alert"]["worker"] == {"name": "Lena Fox", "team": "Housing"}
        assert payload["alert"]["position"]["lat"] is not None
        assert payload["link"].endswith(f"/#alert={pk}")
        texts = [e.text for e in timeline(svc, pk)]
        assert any("webhook answered 503" in t and "trying again" in t for t in texts)
        assert any(t.endswith(": delivered") for t in texts)
        sent = [r.getMessage() for r in caplog.records if r.name == "httpx"]
        assert any("POST http://127.0.0.1:" in line for line in sent), sent
        assert "hook-secret-path" not in caplog.text
