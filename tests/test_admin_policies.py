"""The Admin tab's Escalation section in a real browser (Chromium): the policy file edited,
checked and saved; a save refused with the reason shown and nothing changed; a contact
changed through its form; the preview's timeline; the file exported.

VIGIL_SCREENSHOTS=docs/images: the tests also write the docs' admin-policies*.png; without
it, they only check."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from escalation import policy_files
from monitor.users.models import Role
from tests.browsers import shoot, sign_in
from tests.escalation_support import CONTACTS, DUTY, load
from tests.support import Running

FILE = "/api/v1/escalation/file"

POLICIES = """
policies:
  - name: Panic and duress
    alert_types: [red, duress]
    repeat: 1
    steps:
      - channel: console
      - channel: sms
        to: [backup]
      - after: 30s
        channel: voice
        to: [backup]
      - after: 60s
        channel: voice
        to: [Duty manager]
      - after: 2m
        channel: dispatch
        to: [Emergency dispatch]
  - name: Worker may be hurt
    alert_types: [man_down, no_motion, visit_overdue]
    steps:
      - channel: console
      - channel: voice
        to: [worker]
      - after: 45s
        channel: sms
        to: [backup]
"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def open_section(page: Page) -> None:
    page.click("#tab-admin")
    page.click("#ad-tab-escalation")
    expect(page.locator("#ad-escalation")).to_be_visible()


def stored(svc: Running) -> str:
    with svc.store.session() as db:
        return policy_files.stored(db).yaml


def test_an_admin_edits_saves_is_refused_previews_and_exports(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    load(svc, CONTACTS + POLICIES)
    svc.badge("pol-housing")  # the organisation and its team Housing
    svc.user("ada", Role.ADMIN)
    page = sign_in(chrome, base, "ada")
    open_section(page)
    editor = page.locator("#ae-yaml")
    expect(editor).to_have_value(stored(svc))
    lines = stored(svc).count("\n") + 1
    expect(page.locator("#ad-escalation .af-lines")).to_have_attribute("data-n", str(lines))
    expect(page.locator("#ae-contacts tbody tr")).to_have_count(3)
    shoot(page, "admin-policies", full_page=True)

    # A wrong duration: refused with `vigil policy check`'s words, and nothing changed.
    before = stored(svc)
    wrong = before.replace("after: 120.0", "after: soon")
    assert wrong != before
    said = ""
    try:
        policy_files.check(wrong)
    except policy_files.PolicyError as exc:
        said = str(exc)
    assert said.startswith("policies[0].steps[4].after: ")
    editor.fill(wrong)
    page.get_by_role("button", name="Save", exact=True).click()
    result = page.locator("#ae-result")
    expect(result).to_contain_text("Not saved: nothing was changed.")
    expect(result.locator("li")).to_have_text([said])
    assert stored(svc) == before
    expect(editor).to_have_value(wrong)  # what was typed is kept, to be put right
    result.scroll_into_view_if_needed()
    shoot(page, "admin-policies-refused", full_page=True)

    # Put right, checked, then saved: the stored file is what the editor says.
    right = before.replace("after: 120.0", "after: 3m")
    editor.fill(right)
    page.get_by_role("button", name="Check").click()
    expect(result).to_have_text("Valid: 3 contacts, 2 policies. Not saved yet.")
    assert stored(svc) == before
    page.get_by_role("button", name="Save", exact=True).click()
    expect(result).to_contain_text(
        "Saved: 3 contacts, 2 policies (policies changed 'Panic and duress')."
    )
    assert "after: 180.0" in stored(svc)
    expect(editor).to_have_value(stored(svc))

    # A contact through its form: a wrong number refused beside it, then a right one.
    row = page.locator("#ae-contacts tbody tr", has_text="Duty manager")
    expect(row).to_contain_text(DUTY)
    row.get_by_role("button", name="Edit").click()
    form = page.locator("form.ae-contact")
    form.locator("input[name=phone]").fill("07700 900")
    form.get_by_role("button", name="Save contact").click()
    expect(form.locator(".ad-status")).to_have_text(
        "Not saved: phone: a phone number with its country code, such as +447700900100"
    )
    form.locator("input[name=phone]").fill("")
    form.get_by_role("button", name="Save contact").click()
    expect(form.locator(".ad-status")).to_contain_text(
        "contact 'Duty manager' has no phone number for voice"
    )
    assert DUTY in stored(svc)
    form.locator("input[name=phone]").fill("+447700900555")
    form.get_by_role("button", name="Save contact").click()
    expect(form.locator(".ad-status")).to_have_text("Saved Duty manager.")
    expect(row).to_contain_text("+447700900555")
    expect(editor).to_have_value(stored(svc))

    # The preview: a panic for Housing under duress.
    preview = page.locator("form.ae-preview-form")
    preview.locator("select[name=alert_type]").select_option("red")
    preview.locator("select[name=team_id]").select_option(label="Test Org · Housing")
    preview.locator("input[name=duress]").check()
    preview.get_by_role("button", name="Preview").click()
    timeline = page.locator("#ae-timeline")
    expect(timeline.locator(".ae-policy")).to_have_text(
        "Policy 'Panic and duress': for every organisation and team, alert types Panic, Duress"
    )
    expect(timeline).to_contain_text("Under duress every step runs at once")
    rows = timeline.locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.nth(0)).to_contain_text("at once")
    expect(rows.nth(1)).to_contain_text("Housing backup (+15005550101)")
    expect(rows.nth(3)).to_contain_text("Duty manager (+447700900555)")
    expect(rows.nth(7)).to_contain_text("after 30\u00a0s")
    timeline.scroll_into_view_if_needed()
    shoot(page, "admin-policies-preview", full_page=True)

    # Export: the file as `vigil policy dump` writes it.
    with page.expect_download() as got:
        page.get_by_role("button", name="Export YAML").click()
    download = got.value
    assert download.suggested_filename == "vigil-policies.yaml"
    assert Path(download.path()).read_text(encoding="utf-8") == stored(svc)


def test_a_supervisor_edits_and_one_organisations_admin_only_previews(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    load(svc, CONTACTS + POLICIES)
    svc.badge("pol-team")
    svc.user("sue", Role.SUPERVISOR)
    svc.user("oda", Role.ADMIN, org="Test Org")
    page = sign_in(chrome, base, "sue")
    open_section(page)
    expect(page.locator("#ae-yaml")).to_have_value(stored(svc))
    # The whole service's safety lead changes the policies, as an admin does.
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(1)
    expect(page.locator("#ae-contacts button", has_text="Edit").first).to_be_visible()
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#ae-result")).to_contain_text("Valid:")

    other = sign_in(chrome, base, "oda")
    open_section(other)
    expect(other.locator("#ae-yaml")).to_have_count(0)
    expect(other.locator("#ad-escalation")).to_contain_text("shared by every organisation")
    form = other.locator("form.ae-preview-form")
    form.locator("select[name=alert_type]").select_option("man_down")
    form.get_by_role("button", name="Preview").click()
    timeline = other.locator("#ae-timeline")
    expect(timeline.locator(".ae-policy")).to_contain_text("Policy 'Worker may be hurt'")
    expect(timeline.locator("tbody tr").nth(1)).to_contain_text(
        "the worker who raised the alert (their own phone)"
    )
