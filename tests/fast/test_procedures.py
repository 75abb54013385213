"""Standard operating procedures: the YAML checked with errors that name the place, the most
specific procedure chosen, an alert's checklist fixed in its timeline with each tick, and a
resolve with steps unticked refused without a reason."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner, Result

from monitor.alerts.models import Alert
from monitor.alerts.states import AlertType
from monitor.cli import app
from monitor.procedures.definitions import (
    DEFAULT_FILE,
    ProcedureError,
    choose,
    load_default,
    parse_file,
)
from monitor.users.models import Role
from tests.fast.handlers import FastDevice
from tests.fast.handlers import Handlers as Running

# Two teams of one organisation, one of which has its own panic procedure.
FILE = """
procedures:
  - name: Panic
    alert_types: [red]
    steps:
      - Call the worker's phone
      - do: Call the police
        detail: Give the position.
  - name: Panic, Housing
    alert_types: [red]
    org: Test Org
    team: Housing
    steps:
      - Call the Housing duty phone
      - Call the worker's phone
      - Call the police
  - name: Duress
    alert_types: [duress]
    steps:
      - Do NOT call the worker's phone
      - Call the police with the position
  - name: Anything else
    steps:
      - Call the worker's phone
"""


def vigil(svc: Running, *args: str, ok: bool = True) -> Result:
    """The `vigil` command on the running service's store."""
    env = {
        "VIGIL_DATA_DIR": str(svc.settings.data_dir),
        "VIGIL_DATABASE_URL": svc.settings.database_url,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert (result.exit_code == 0) == ok, result.output
    return result


def load(svc: Running, tmp_path: Path, text: str = FILE) -> Path:
    """FILE stored by `vigil sop load`, with the organisation and team it names."""
    svc.badge("names")
    sop = tmp_path / "sop.yaml"
    sop.write_text(text)
    vigil(svc, "sop", "load", str(sop))
    return sop


def raise_red(svc: Running, prefix: str, team: str = "Housing") -> tuple[int, str, FastDevice]:
    badge, _ = svc.badge(prefix, team=team)
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    assert pk is not None
    return pk, device_alert, badge


def test_the_default_procedures_are_valid_and_cover_every_type() -> None:
    parsed = parse_file(DEFAULT_FILE.read_text())
    for kind in AlertType:
        chosen = choose(parsed.procedures, kind.value, None, None)
        assert chosen is not None, kind
    duress = choose(parsed.procedures, "duress", None, None)
    assert duress is not None and "NOT call" in duress.steps[0].do


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("procedures: [", "not valid YAML"),
        (
            "procedures:\n  - name: P\n    steps:\n      - detail: no line\n",
            "procedures[0] (P).steps[0].do: Field required",
        ),
        (
            "procedures:\n  - name: P\n    alert_types: [red, fire]\n    steps: [a]\n",
            "procedures[0] (P).alert_types[1]: Input should be",
        ),
        ("procedures:\n  - name: P\n    steps: []\n", "procedures[0] (P).steps: List should have"),
        (
            "procedures:\n  - name: P\n    stepz: [a]\n",
            "procedures[0] (P).stepz: Extra inputs are not permitted",
        ),
        (
            "procedures:\n  - {name: P, steps: [a]}\n"
            "  - {name: P, alert_types: [red], steps: [b]}\n",
            "procedures[1].name: 'P' appears twice",
        ),
        (
            "procedures:\n  - {name: A, alert_types: [red], steps: [a]}\n"
            "  - {name: B, alert_types: [test, red], steps: [b]}\n",
            "procedures[1] (B).alert_types: red for this service is already 'A''s",
        ),
    ],
)
def test_a_bad_file_names_the_place(text: str, says: str) -> None:
    with pytest.raises(ProcedureError) as err:
        parse_file(text)
    assert says in str(err.value)


def _chosen(text: str, kind: str, org: str | None, team: str | None) -> str | None:
    chosen = choose(parse_file(text).procedures, kind, org, team)
    return chosen.name if chosen is not None else None


def test_the_most_specific_procedure_applies() -> None:
    assert _chosen(FILE, "red", "Test Org", "Housing") == "Panic, Housing"
    assert _chosen(FILE, "red", "Test Org", "Nursing") == "Panic"
    assert _chosen(FILE, "red", "Other Org", "Housing") == "Panic"  # Test Org's Housing only
    assert _chosen(FILE, "man_down", "Test Org", "Housing") == "Anything else"
    # An organisation's own over everybody's; for every type over nothing.
    org = FILE + "  - {name: Ours, org: Test Org, alert_types: [man_down], steps: [a]}\n"
    assert _chosen(org, "man_down", "Test Org", "Housing") == "Ours"
    assert _chosen(org, "man_down", "Other Org", None) == "Anything else"
    # Never one for every type under duress: it may say to call the worker.
    assert _chosen(FILE, "duress", None, None) == "Duress"
    before, duress = FILE.split("  - name: Duress")
    everything = "  - name: Anything else" + duress.split("  - name: Anything else")[1]
    assert _chosen(before + everything, "red", "Other Org", None) == "Panic"
    assert _chosen(before + everything, "test", None, None) == "Anything else"
    assert _chosen(before + everything, "duress", "Test Org", "Housing") is None


def test_load_check_dump_and_a_bad_load_changes_nothing(svc: Running, tmp_path: Path) -> None:
    good = tmp_path / "sop.yaml"
    good.write_text(FILE)
    svc.badge("names")  # Test Org and its team Housing exist
    assert "4 procedures, valid" in vigil(svc, "sop", "check", str(good)).output
    assert "loaded 4 procedures" in vigil(svc, "sop", "load", str(good)).output
    before = vigil(svc, "sop", "dump").output
    # Dump writes what load reads (in the order of their names).
    assert parse_file(before).procedures == sorted(
        parse_file(FILE).procedures, key=lambda p: p.name
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text(FILE.replace("      - Call the police\n", "      - do: ''\n"))
    out = vigil(svc, "sop", "load", str(bad), ok=False).output
    assert "procedures[1] (Panic, Housing).steps[2].do" in out
    # A team nobody has is refused at load, where the store can tell.
    typo = tmp_path / "typo.yaml"
    typo.write_text(FILE.replace("team: Housing", "team: Housng"))
    assert "valid" in vigil(svc, "sop", "check", str(typo)).output
    out = vigil(svc, "sop", "load", str(typo), ok=False).output
    assert "procedures[1] (Panic, Housing).team: no team in 'Test Org' is called 'Housng'" in out
    assert vigil(svc, "sop", "dump").output == before


def test_checklist_ticks_and_resolve_with_steps_open(svc: Running, tmp_path: Path) -> None:
    sop = load(svc, tmp_path)
    pk, _, _ = raise_red(svc, "sop")
    ops = svc.user()
    base = f"/api/v1/alerts/{pk}"

    shown = svc.http.get(f"{base}/procedure", headers=ops).json()
    assert shown["name"] == "Panic, Housing" and shown["kind"] == "red" and shown["active"]
    assert [s["done"] for s in shown["steps"]] == [False, False, False]
    # Shown again, it is not applied again.
    assert svc.http.get(f"{base}/procedure", headers=ops).json()["seq"] == shown["seq"]

    r = svc.http.put(f"{base}/procedure/steps/1", json={"done": True}, headers=ops)
    assert r.status_code == 200, r.text
    step = r.json()["steps"][1]
    assert step["done"] and step["by"] == "user:op1" and step["at"]
    # Ticking it again writes nothing; unticking is recorded too.
    svc.http.put(f"{base}/procedure/steps/1", json={"done": True}, headers=ops)
    svc.http.put(f"{base}/procedure/steps/2", json={"done": True}, headers=ops)
    svc.http.put(f"{base}/procedure/steps/2", json={"done": False}, headers=ops)
    assert svc.http.put(f"{base}/procedure/steps/3", json={}, headers=ops).status_code == 404

    # A new file does not change the checklist of an alert that has one.
    sop.write_text(FILE.replace("Call the Housing duty phone", "Something else"))
    vigil(svc, "sop", "load", str(sop))
    assert svc.http.get(f"{base}/procedure", headers=ops).json()["steps"][0]["do"] == (
        "Call the Housing duty phone"
    )

    for note in (None, "   "):
        body = {"outcome": "false_alarm", "note": note}
        r = svc.http.post(f"{base}/resolve", json=body, headers=ops)
        assert r.status_code == 409, r.text
        assert "2 steps of the Panic, Housing procedure not ticked" in r.json()["detail"]
    body = {"outcome": "false_alarm", "note": "Worker answered at once: pressed by mistake"}
    assert svc.http.post(f"{base}/resolve", json=body, headers=ops).status_code == 200
    r = svc.http.put(f"{base}/procedure/steps/0", json={"done": True}, headers=ops)
    assert r.status_code == 409  # the record of a closed alert is not changed

    timeline = svc.http.get(base, headers=ops).json()["timeline"]
    mine = [(t["kind"], t["actor"], t["text"]) for t in timeline if t["kind"].startswith("proc")]
    assert mine == [
        ("procedure", "system", "Procedure for Panic: Panic, Housing (3 steps)"),
        ("procedure_step", "user:op1", "Step 2 done: Call the worker's phone"),
        ("procedure_step", "user:op1", "Step 3 done: Call the police"),
        ("procedure_step", "user:op1", "Step 3 not done after all: Call the police"),
        (
            "procedure_unfinished",
            "user:op1",
            "Resolved with 2 steps not ticked (Call the Housing duty phone; Call the police)."
            " Why: Worker answered at once: pressed by mistake",
        ),
    ]
    kinds = [t["kind"] for t in timeline]
    assert kinds.index("procedure_unfinished") < kinds.index("resolved")
    vigil(svc, "audit", "verify")  # the checklist and its ticks are in the verified chain

    # The safety lead's PDF of the incident lists the checklist as it was left.
    lead = svc.user("lead", Role.SUPERVISOR)
    pdf = svc.http.get(f"/api/v1/incidents/{pk}/report.pdf", headers=lead)
    assert pdf.status_code == 200, pdf.text
    pages = PdfReader(io.BytesIO(pdf.content)).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())
    # Who ticked it, and when to the millisecond, in UTC: the time of the tick itself.
    at = datetime.fromisoformat(step["at"]).astimezone(UTC)
    ticked = f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d} UTC"
    for expected in (
        "Steps ticked 1 of 3",
        "1. Call the Housing duty phone (not ticked)",
        f"2. Call the worker's phone (done, {ticked} by op1)",
        "3. Call the police (not ticked)",
    ):
        assert expected in text, text


def test_a_take_over_comes_before_the_procedure_in_the_record(svc: Running, tmp_path: Path) -> None:
    """Resolving an alert someone else holds, with steps unticked: the holder rule is asked
    first (refused without a take-over, whatever the checklist), and the record reads in the
    order things happened: taken over, then the steps left open and why, then resolved."""
    load(svc, tmp_path)
    pk, _, _ = raise_red(svc, "sop-held")
    alice, lead = svc.user("alice"), svc.user("lead", Role.SUPERVISOR)
    base = f"/api/v1/alerts/{pk}"
    assert svc.http.post(f"{base}/acknowledge", headers=alice).status_code == 200

    r = svc.http.post(f"{base}/resolve", json={"outcome": "false_alarm"}, headers=lead)
    assert r.status_code == 409 and r.json()["detail"].startswith("alice has taken charge")
    body = {"outcome": "false_alarm", "take_over": True}
    r = svc.http.post(f"{base}/resolve", json=body, headers=lead)
    assert r.status_code == 409 and "not ticked: say why in the note" in r.json()["detail"]
    kinds = [t["kind"] for t in svc.http.get(base, headers=lead).json()["timeline"]]
    assert "taken_over" not in kinds and "procedure_unfinished" not in kinds  # nothing kept

    body["note"] = "Worker rang in: pressed by mistake"
    assert svc.http.post(f"{base}/resolve", json=body, headers=lead).status_code == 200
    timeline = svc.http.get(base, headers=lead).json()["timeline"]
    closing = [
        (t["kind"], t["actor"], t["text"].split(" (")[0])
        for t in timeline
        if t["kind"] in ("taken_over", "procedure_unfinished", "resolved")
    ]
    assert closing == [
        ("taken_over", "user:lead", "Taken over from alice to resolve"),
        ("procedure_unfinished", "user:lead", "Resolved with 3 steps not ticked"),
        ("resolved", "user:lead", "Resolved: False alarm. Worker rang in: pressed by mistake"),
    ]


def test_every_step_ticked_resolves_without_a_note(svc: Running, tmp_path: Path) -> None:
    load(svc, tmp_path)
    pk, _, _ = raise_red(svc, "done", team="Nursing")
    ops = svc.user()
    base = f"/api/v1/alerts/{pk}"
    for i in range(2):
        svc.http.put(f"{base}/procedure/steps/{i}", json={"done": True}, headers=ops)
    r = svc.http.post(f"{base}/resolve", json={"outcome": "worker_safe"}, headers=ops)
    assert r.status_code == 200, r.text


def test_duress_replaces_the_checklist(svc: Running, tmp_path: Path) -> None:
    sop = load(svc, tmp_path)
    pk, device_alert, badge = raise_red(svc, "duress", team="Nursing")
    ops = svc.user()
    base = f"/api/v1/alerts/{pk}"
    svc.http.put(f"{base}/procedure/steps/0", json={"done": True}, headers=ops)
    badge.cancel_alert(device_alert, "9876")
    badge.wait_for("alert_cancelled", alert_id=device_alert, timeout=10)

    shown = svc.http.get(f"{base}/procedure", headers=ops).json()
    assert shown["name"] == "Duress" and shown["kind"] == "duress"
    assert shown["steps"][0] == {
        "index": 0,
        "do": "Do NOT call the worker's phone",
        "detail": None,
        "done": False,
        "by": None,
        "at": None,
    }
    # No procedure for duress stored: the panic steps are withdrawn, not left to follow.
    pk2, alert2, badge2 = raise_red(svc, "void", team="Nursing")
    svc.http.get(f"/api/v1/alerts/{pk2}/procedure", headers=ops)
    sop.write_text(FILE.split("  - name: Duress")[0])
    vigil(svc, "sop", "load", str(sop))
    badge2.cancel_alert(alert2, "9876")
    badge2.wait_for("alert_cancelled", alert_id=alert2, timeout=10)
    shown = svc.http.get(f"/api/v1/alerts/{pk2}/procedure", headers=ops).json()
    assert shown["name"] is None and shown["steps"] == []
    timeline = svc.http.get(f"/api/v1/alerts/{pk2}", headers=ops).json()["timeline"]
    applied = [t["text"] for t in timeline if t["kind"] == "procedure"]
    assert applied == [
        "Procedure for Panic: Panic (2 steps)",
        "No procedure for Duress: the Panic steps no longer apply",
    ]


def test_the_default_procedures_load_only_into_an_empty_store(svc: Running, tmp_path: Path) -> None:
    """What `vigil demo` does: the shipped procedures, never over stored ones."""
    with svc.store.begin() as db:
        assert load_default(db)
    dumped = vigil(svc, "sop", "dump").output
    assert parse_file(dumped).procedures == sorted(
        parse_file(DEFAULT_FILE.read_text()).procedures, key=lambda p: p.name
    )
    load(svc, tmp_path)
    with svc.store.begin() as db:
        assert not load_default(db)
    assert "Panic, Housing" in vigil(svc, "sop", "dump").output
