"""`vigil fleet import`: a whole fleet from one file (YAML or CSV), checked whole before
anything is written, every worker and device added as one would be (same rules, same audit
entries), the credentials written once to a file of their own; on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from monitor.audit.models import AuditEntry
from monitor.cli import app
from monitor.db import Store
from monitor.devices.models import Device
from monitor.devices.trackers import split_identifier
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.service import check_pin
from monitor.security import verify_device_secret

Run = Callable[..., Result]

FLEET = """
workers:
  - name: Ana Lima
    organisation: North Council
    team: Housing
    phone: "+44 7700 900123"
    notes: Asthma; drives a blue Corsa
    cancel_pin: "1234"
    duress_pin: "9876"
    devices:
      - {id: ana-badge}
      - {id: ana-phone, kind: osmand, heartbeat_interval_s: 60}
  - name: Tom Reyes
    organisation: North Council
    team: Education
    devices:
      - {id: tom-badge, kind: badge}
"""


@pytest.fixture
def vigil(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(app, list(args))
        assert (result.exit_code == 0) == ok, result.output
        return result

    yield run


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


def _counts(store: Store) -> tuple[int, int, int, int, int]:
    with store.session() as db:
        return (
            db.scalar(select(func.count()).select_from(Organisation)) or 0,
            db.scalar(select(func.count()).select_from(Team)) or 0,
            db.scalar(select(func.count()).select_from(Worker)) or 0,
            db.scalar(select(func.count()).select_from(Device)) or 0,
            db.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


def _credentials(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with path.open(newline="") as f:
        return {row["device_id"]: row for row in csv.DictReader(f)}


def test_a_yaml_fleet_is_added_whole_with_its_credentials_written_once(
    vigil: Run, store: Store, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    creds = tmp_path / "creds.csv"
    said = vigil("fleet", "check", str(fleet)).output
    assert "would add 2 workers and 3 devices" in said
    assert "new organisation: North Council" in said and "new team: North Council / Housing" in said
    assert not creds.exists() and _counts(store)[2:4] == (0, 0)

    out = vigil("fleet", "import", str(fleet), "--credentials", str(creds)).output
    assert "added 2 workers and 3 devices" in out
    # The secrets' file is the owner's alone, and holds what each device signs in with.
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    rows = _credentials(creds)
    assert set(rows) == {"ana-badge", "ana-phone", "tom-badge"}
    assert rows["ana-badge"]["worker"] == "Ana Lima" and rows["tom-badge"]["team"] == "Education"
    with store.session() as db:
        devices = {d.id: d for d in db.scalars(select(Device))}
        assert verify_device_secret(devices["ana-badge"].secret_hash, rows["ana-badge"]["secret"])
        assert not verify_device_secret(
            devices["tom-badge"].secret_hash, rows["ana-badge"]["secret"]
        )
        # A tracker gets its identifier and Traccar Client's set-up link, as one added alone.
        ident = rows["ana-phone"]["identifier"]
        assert split_identifier(ident) == ("ana-phone", rows["ana-phone"]["secret"])
        assert rows["ana-phone"]["setup_link"].endswith(f"/osmand?id={ident}")
        assert devices["ana-phone"].heartbeat_interval_s == 60
        ana = db.scalars(select(Worker).where(Worker.name == "Ana Lima")).one()
        assert devices["ana-badge"].worker_id == ana.id and ana.phone == "+44 7700 900123"
        assert check_pin(ana, "1234") == "cancel" and check_pin(ana, "9876") == "duress"
        tom = db.scalars(select(Worker).where(Worker.name == "Tom Reyes")).one()
        assert tom.cancel_pin_hash == ""  # to choose through a link
        entries = list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    actions = [e.action for e in entries]
    assert actions.count("worker_added") == 2 and actions.count("device_added") == 3
    summary = entries[-1]
    assert (summary.actor, summary.action) == ("cli", "fleet_imported")
    assert summary.details["new_teams"] == ["North Council / Education", "North Council / Housing"]
    text = repr([(e.target, e.details) for e in entries])
    for row in rows.values():
        assert row["secret"] not in text
    assert "1234" not in text and "9876" not in text

    # Secrets are written once: an existing file is never written over.
    again = vigil("fleet", "import", str(fleet), "--credentials", str(creds), ok=False)
    assert "exists" in again.output


def test_nothing_is_written_when_any_row_is_refused(
    vigil: Run, store: Store, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    vigil("fleet", "import", str(fleet), "--credentials", str(tmp_path / "first.csv"))
    before = _counts(store)
    clash = tmp_path / "more.csv"
    clash.write_text(
        "name,organisation,team,device_id,device_kind\n"
        "Ben Cole,South Trust,Roads,ben-badge,badge\n"
        ",,,ben-phone,owntracks\n"
        "Cara Dunn,South Trust,Roads,tom-badge,\n"
        "Ben Cole,South Trust,Roads,ben-badge,\n"
    )
    creds = tmp_path / "more-creds.csv"
    said = vigil("fleet", "import", str(clash), "--credentials", str(creds), ok=False).output
    # Every problem, each named by its line, and nothing changed: not even the new team.
    assert "line 4: device 'tom-badge' is already in Vigil" in said
    assert "line 5: device 'ben-badge' is also on line 2" in said
    assert "line 5: worker 'Ben Cole' of South Trust / Roads is also on line 2" in said
    assert "nothing was changed" in said
    assert _counts(store) == before
    assert not creds.exists() and not list(tmp_path.glob(".more-creds*"))

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "name,cancel_pin,duress_pin,device_id,device_kind\n"
        "Dee,1234,1234,dee-badge,pager\n"
        ",,,,\n"
        "Eve,12,,eve badge,\n"
    )
    said = vigil("fleet", "check", str(bad), ok=False).output
    assert "line 2, duress_pin: the cancel PIN and the duress PIN must differ" in said
    assert "line 2: kind must be badge, phone, osmand or owntracks" in said
    assert "line 4, cancel_pin: a PIN is 4 to 8 digits" in said
    assert "line 4: device id must be 1 to 64 characters" in said
    assert _counts(store) == before

    unknown = tmp_path / "cols.csv"
    unknown.write_text("name,device_id,colour\nFay,fay-1,red\n")
    said = vigil("fleet", "check", str(unknown), ok=False).output
    assert "unknown column 'colour'" in said


def test_a_csv_rows_without_a_name_are_more_devices_of_the_worker_above(
    vigil: Run, store: Store, tmp_path: Path
) -> None:
    sheet = tmp_path / "sheet.csv"
    # As a spreadsheet saves it: a byte-order mark, and a worker with two devices.
    sheet.write_text(
        "\ufeffname,organisation,team,phone,notes,cancel_pin,duress_pin,device_id,device_kind\n"
        "Gil Hart,East Trust,,,,1111,2222,gil-badge,badge\n"
        ",,,,,,,gil-phone,phone\n"
        "Hal Ives,,,,,,,,\n",
        encoding="utf-8",
    )
    creds = tmp_path / "c.csv"
    vigil("fleet", "import", str(sheet), "--credentials", str(creds))
    with store.session() as db:
        gil = db.scalars(select(Worker).where(Worker.name == "Gil Hart")).one()
        assert sorted(db.scalars(select(Device.id).where(Device.worker_id == gil.id))) == [
            "gil-badge",
            "gil-phone",
        ]
        hal = db.scalars(select(Worker).where(Worker.name == "Hal Ives")).one()
        org = db.get(Organisation, hal.org_id)
        assert org is not None and org.name == "Default" and hal.team_id is None
    assert set(_credentials(creds)) == {"gil-badge", "gil-phone"}


def test_the_file_names_its_own_mistakes_in_yaml(vigil: Run, tmp_path: Path) -> None:
    cases: dict[str, Any] = {
        "workers: [{name: X, cancel_pin: '1234'}]": "workers[0]: give both PINs",
        "workers: [{name: X, colour: red}]": "workers[0].colour: Extra inputs are not permitted",
        "workers: [{name: '', devices: [{id: a}]}]": "workers[0].name:",
        "workers: [{name: X, devices: [{id: a, heartbeat_interval_s: 5}]}]": (
            "workers[0].devices[0]: heartbeat interval must be at least 10 s"
        ),
        "workers: [{name: X, phone: '12'}]": "workers[0].phone: a phone number with its country",
        "workers: {": "not valid YAML",
        "workers: " + "[" * 5000: "not valid YAML: nested too deeply",
    }
    for text, expected in cases.items():
        f = tmp_path / "f.yaml"
        f.write_text(text)
        assert expected in vigil("fleet", "check", str(f), ok=False).output, text
