// Vigil console, Admin tab: escalation policies and contacts. The policy file as the `vigil
// policy` command reads and writes it, in an editor with line numbers; Check and Save, whose
// refusals (`vigil policy check`'s words, each naming its place) are shown beside it; the
// contacts with a form to change one; a preview of whom an alert would reach and when; and
// the file as a download. What is valid and who may change it is the service's decision
// (escalation/policy_files.py, policy_views.py); what people typed goes on the page as text.
"use strict";

const policiesAdmin = { pane: null, base: null, teams: [] };

adminSection({ id: "escalation", label: "Escalation", roles: ["admin", "supervisor"], open: openPolicies });

// Policies and contacts are shared by every organisation: only the whole service's
// supervisors (its safety leads) and admins read and change them (docs/security.md).
function policiesWhole() { return !state.me.org_id && !state.me.team_id; }

async function openPolicies(pane) {
  if (policiesAdmin.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    policiesAdmin.pane = pane;
    policiesAdmin.base = null;
    const parts = [el("h2", "Escalation policies and contacts")];
    if (!policiesWhole()) {
      parts.push(el("p", "Policies and contacts are shared by every organisation, so only accounts of the whole service read or change them. The preview shows whom your organisation's alerts would reach.", "note"));
    }
    parts.push(policiesBox("ae-preview"));
    if (policiesWhole()) parts.splice(1, 0, policiesBox("ae-file"), policiesBox("ae-contacts"));
    pane.replaceChildren(...parts);
    if (policiesWhole()) drawFileEditor();
    await drawPreviewForm();
  }
  if (policiesWhole()) await loadPolicyFile();
}

function policiesBox(id) {
  const box = el("section");
  box.id = id;
  return box;
}

// ---- the file ------------------------------------------------------------------------

function drawFileEditor() {
  const box = $("#ae-file");
  const gutter = el("pre", "1", "ae-lines");
  gutter.setAttribute("aria-hidden", "true");
  const text = el("textarea", null, "ae-yaml");
  text.id = "ae-yaml";
  text.spellcheck = false;
  text.setAttribute("aria-label", "Policy file (YAML)");
  text.setAttribute("wrap", "off");
  const numbers = () => {
    const n = text.value.split("\n").length;
    if (gutter.dataset.n !== String(n)) {
      gutter.dataset.n = String(n);
      gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join("\n");
    }
    gutter.scrollTop = text.scrollTop;
  };
  text.addEventListener("input", numbers);
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
  const editor = el("div", null, "ae-editor");
  editor.append(gutter, text);
  const status = el("div", null, "ae-result");
  status.id = "ae-result";
  status.setAttribute("role", "status");
  const buttons = el("div", null, "ae-buttons");
  // Drawn only for accounts of the whole service, who may save (openPolicies).
  buttons.append(adminButton("Check", () => fileAction("check")),
    adminButton("Save", () => fileAction("save")),
    adminButton("Load stored", () => loadPolicyFile(true)),
    adminButton("Export YAML", exportPolicies));
  box.replaceChildren(el("h3", "Policy file"),
    el("p", "The file `vigil policy load` reads: every contact and policy. Saving replaces them all at once, after the same checks as `vigil policy check`; nothing changes if any of it is wrong. Running escalations keep the policy they started with.", "note"),
    editor, buttons, status);
  policiesAdmin.numbers = numbers;
}

// The stored file into the editor; unless `force`, not over an edit not yet saved.
async function loadPolicyFile(force = false) {
  const file = await api("/api/v1/escalation/file");
  const text = $("#ae-yaml");
  const edited = policiesAdmin.loaded !== undefined && text.value !== policiesAdmin.loaded;
  if (force || !edited) {
    text.value = file.yaml;
    policiesAdmin.loaded = file.yaml;
    policiesAdmin.base = file.sha256;
    policiesAdmin.numbers();
    if (force) fileResult("Loaded the stored file.");
  }
  drawContacts(file.contacts);
}

// What Check or Save said: done, or each problem on a line of its own.
function fileResult(outcome) {
  const box = $("#ae-result");
  const refused = outcome instanceof Error;
  box.classList.toggle("error", refused);
  box.setAttribute("role", refused ? "alert" : "status");
  if (!refused) { box.replaceChildren(el("p", outcome)); return; }
  const list = el("ul", null, "ae-problems");
  for (const line of outcome.message.split("\n")) list.append(el("li", line));
  box.replaceChildren(el("p", outcome.saving ? "Not saved: nothing was changed." : "Not valid:"), list);
}

async function fileAction(what) {
  const text = $("#ae-yaml").value;
  try {
    if (what === "check") {
      const r = await adminSend("/api/v1/escalation/file/check", "POST", { yaml: text });
      fileResult(`Valid: ${r.contacts} contacts, ${r.policies} policies. Not saved yet.`);
      return;
    }
    const r = await adminSend("/api/v1/escalation/file", "PUT", { yaml: text, base: policiesAdmin.base });
    policiesAdmin.loaded = undefined;
    await loadPolicyFile(true);
    fileResult(`Saved: ${r.contacts} contacts, ${r.policies} policies (${r.summary}).`);
  } catch (err) {
    err.saving = what === "save";
    fileResult(err);
  }
}

async function exportPolicies() {
  try {
    await download("/api/v1/escalation/file.yaml", "vigil-policies.yaml");  // review.js
  } catch (err) {
    fileResult(err);
  }
}

// ---- contacts ------------------------------------------------------------------------

function drawContacts(contacts) {
  const box = $("#ae-contacts");
  const editing = box.querySelector("form");
  const rows = contacts.map((c) => {
    const cells = [c.name, c.phone, c.webhook, c.arc, c.backup_for.join(", ")];
    if (policiesWhole()) cells.push(adminButton("Edit", () => contactForm(c)));
    return cells;
  });
  const heads = ["Name", "Phone", "Webhook", "Alarm centre", "Backup for"];
  if (policiesWhole()) heads.push("");
  const parts = [el("h3", "Contacts"), adminTable(heads, rows, "No contacts are stored.")];
  if (policiesWhole()) parts.push(adminButton("Add a contact", () => contactForm(null)));
  box.replaceChildren(...parts);
  if (editing) box.append(editing);  // a form being filled stays as it is
}

function contactForm(c) {
  const box = $("#ae-contacts");
  box.querySelector("form")?.remove();
  const form = adminForm({
    legend: c ? `Change ${c.name}` : "Add a contact",
    className: "ae-contact",
    submitLabel: c ? "Save contact" : "Add contact",
    fields: [
      { name: "name", label: "Name", value: c?.name, required: true, attrs: c ? { readonly: "" } : {} },
      { name: "phone", label: "Phone (E.164)", type: "tel", value: c?.phone, attrs: { placeholder: "+447700900100" } },
      { name: "webhook", label: "Webhook URL", value: c?.webhook },
      { name: "arc", label: "Alarm-receiving centre", value: c?.arc, help: "sia-dc09://host:port?account=…" },
      { name: "backup_for", label: "Backup staff for teams", value: c?.backup_for.join(", "), help: "Team names, separated by commas" },
    ],
    submit: async (v) => {
      const body = { ...v, backup_for: v.backup_for.split(",").map((t) => t.trim()).filter(Boolean) };
      await adminSend(`/api/v1/escalation/contacts/${encodeURIComponent(v.name)}`, "PUT", body);
      policiesAdmin.loaded = undefined;  // the file changed: show it afresh
      await loadPolicyFile();
      return `Saved ${v.name}.`;
    },
  });
  box.append(form);
  form.elements.namedItem(c ? "phone" : "name").focus();
}

// ---- the preview ---------------------------------------------------------------------

async function drawPreviewForm() {
  const box = $("#ae-preview");
  policiesAdmin.teams = await api("/api/v1/escalation/preview/teams");
  const teams = policiesAdmin.teams.map((t) => [String(t.id), `${t.org} · ${t.name}`]);
  if (policiesWhole()) teams.unshift(["", "No team"]);
  const form = adminForm({
    legend: "Who would be contacted, and when",
    className: "ae-preview-form",
    submitLabel: "Preview",
    fields: [
      { name: "alert_type", label: "Alert type", type: "select",
        options: state.meta.alert_types.map((t) => [t.value, word("type", t.value)]) },
      { name: "team_id", label: "Team", type: "select", options: teams },
      { name: "duress", label: "Under duress", type: "checkbox" },
    ],
    submit: async (v) => {
      const q = new URLSearchParams({ alert_type: v.alert_type, duress: String(v.duress) });
      if (v.team_id) q.set("team_id", v.team_id);
      const p = await api(`/api/v1/escalation/preview?${q}`);
      drawPreview(p);
      return p.policy ? `Policy ${p.policy}: ${p.steps.length + p.more} steps, below.` : "No policy fits.";
    },
  });
  const out = el("div", null, "ae-timeline");
  out.id = "ae-timeline";
  box.replaceChildren(el("h3", "Preview"), form, out);
}

function drawPreview(p) {
  const out = $("#ae-timeline");
  const head = el("p", p.policy ? p.why : "No policy fits: operators alone see it on the console.", "ae-policy");
  const notes = el("ul", null, "note");
  for (const n of p.notes) notes.append(el("li", n));
  const rows = p.steps.map((s) => {
    const who = el("div");
    if (!s.sends) who.append(el("span", "Operators, on the console"));
    for (const r of s.to) {
      const line = el("div", `${r.name}${r.address ? ` (${r.address})` : ""}`, r.skipped ? "ae-skipped" : null);
      if (r.skipped) line.append(el("small", ` ${r.skipped}`));
      who.append(line);
    }
    if (s.nobody) who.append(el("small", s.nobody, "ae-skipped"));
    const when = el("span", s.at_s ? `after ${duration(s.at_s)}` : "at once");
    if (s.burst) when.append(el("small", " duress burst"));
    return [when, s.label, s.word, who];
  });
  const table = adminTable(["When", "Step", "How", "Whom"], rows);
  table.classList.add("ae-steps");
  const parts = [head, notes, table];
  if (p.more) parts.push(el("p", `and ${p.more} more steps in later rounds`, "note"));
  out.replaceChildren(...parts);
}
