"""The procedures file in the browser's API: a save refused exactly as `vigil sop load`
refuses, and then nothing changed; a good save is the checklist of the next alert; a save
made on an older version refused; the shipped procedures to start from; who may do what;
every save audited with the file it replaced."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from monitor.audit.models import AuditEntry
from monitor.procedures.definitions import DEFAULT_FILE, ProcedureError, parse_file
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.fast.test_procedures import FILE, raise_red, vigil

URL = "/api/v1/procedures/file"


def loads(svc: Running) -> list[AuditEntry]:
    with svc.store.session() as db:
        q = select(AuditEntry).where(AuditEntry.action == "procedures_loaded")
        return list(db.scalars(q.order_by(AuditEntry.id)))


def test_a_safety_lead_starts_from_the_shipped_procedures_and_the_next_alert_has_one(
    svc: Running,
) -> None:
    svc.badge("names")  # Test Org and its team Housing
    lead = svc.user("lead", Role.SUPERVISOR)
    empty = svc.http.get(URL, headers=lead).json()
    assert (empty["procedures"], empty["yaml"]) == ([], "procedures: []\n")

    shipped = svc.http.get("/api/v1/procedures/shipped", headers=lead).json()["yaml"]
    assert shipped == DEFAULT_FILE.read_text(encoding="utf-8")
    checked = svc.http.post(f"{URL}/check", json={"yaml": shipped}, headers=lead).json()
    assert checked == {"valid": True, "procedures": len(parse_file(shipped).procedures)}
    assert svc.http.get(URL, headers=lead).json()["procedures"] == []  # a check saves nothing

    r = svc.http.put(URL, json={"yaml": shipped, "base": empty["sha256"]}, headers=lead)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["summary"].startswith("procedures added 'Panic'")
    now = svc.http.get(URL, headers=lead).json()
    assert now["sha256"] == saved["sha256"]
    assert sorted(p["name"] for p in now["procedures"]) == sorted(
        p.name for p in parse_file(shipped).procedures
    )
    (entry,) = loads(svc)
    assert (entry.actor, entry.target) == ("user:lead", "console")
    assert entry.details["previous"] == "procedures: []\n"
    assert entry.details["sha256"] == saved["sha256"]

    # What an operator sees in the next alert.
    pk, _, _ = raise_red(svc, "after-save")
    shown = svc.http.get(f"/api/v1/alerts/{pk}/procedure", headers=svc.user()).json()
    assert shown["name"] == "Panic"

    download = svc.http.get(f"{URL}.yaml", headers=lead)
    assert download.text == now["yaml"]
    assert "vigil-procedures.yaml" in download.headers["content-disposition"]


def test_a_save_is_refused_as_vigil_sop_load_refuses_and_changes_nothing(
    svc: Running, tmp_path: Path
) -> None:
    svc.badge("names")
    ada = svc.user("ada", Role.ADMIN)
    first = svc.http.put(URL, json={"yaml": FILE}, headers=ada)
    assert first.status_code == 200, first.text
    before = svc.http.get(URL, headers=ada).json()

    typo = FILE.replace("team: Housing", "team: Housng")
    said = "procedures[1] (Panic, Housing).team: no team in 'Test Org' is called 'Housng'"
    path = tmp_path / "typo.yaml"
    path.write_text(typo)
    assert said in vigil(svc, "sop", "load", str(path), ok=False).output
    for r in (
        svc.http.post(f"{URL}/check", json={"yaml": typo}, headers=ada),
        svc.http.put(URL, json={"yaml": typo, "base": before["sha256"]}, headers=ada),
    ):
        assert (r.status_code, r.json()["detail"]) == (422, said)
    bad = FILE.replace("      - Call the police\n", "      - do: ''\n")
    try:
        parse_file(bad)
    except ProcedureError as exc:
        words = str(exc)
    r = svc.http.put(URL, json={"yaml": bad}, headers=ada)
    assert (r.status_code, r.json()["detail"]) == (422, words)
    # Nested deeper than the YAML reader recurses: refused in words, not a server error.
    r = svc.http.put(URL, json={"yaml": "procedures: " + "[" * 5000}, headers=ada)
    assert (r.status_code, r.json()["detail"]) == (422, "not valid YAML: nested too deeply")
    assert svc.http.get(URL, headers=ada).json() == before
    assert len(loads(svc)) == 1

    # Saved by someone else meanwhile: an edit made on the older version is refused.
    theirs = FILE.replace("Call the Housing duty phone", "Call the Housing desk")
    assert svc.http.put(URL, json={"yaml": theirs}, headers=ada).status_code == 200
    late = svc.http.put(URL, json={"yaml": FILE, "base": before["sha256"]}, headers=ada)
    assert late.status_code == 409 and "changed by someone else" in late.json()["detail"]
    assert "Call the Housing desk" in svc.http.get(URL, headers=ada).json()["yaml"]


def test_only_the_whole_services_supervisors_and_admins_read_or_change_it(
    svc: Running,
) -> None:
    svc.badge("names")
    refused = [
        svc.user(),  # an operator
        svc.user("oda", Role.ADMIN, org="Test Org"),
        svc.user("sue", Role.SUPERVISOR, org="Test Org", team="Housing"),
    ]
    for headers in refused:
        assert svc.http.get(URL, headers=headers).status_code == 403
        assert svc.http.get("/api/v1/procedures/shipped", headers=headers).status_code == 403
        assert svc.http.put(URL, json={"yaml": FILE}, headers=headers).status_code == 403
    assert svc.http.get(URL).status_code == 401
    assert loads(svc) == []
