// Vigil console, Admin tab: escalation policies and contacts. The policy file as the `vigil
// policy` command reads and writes it (admin_file.js); the contacts with a form to change
// one; a preview of whom an alert would reach and when. What is valid and who may change it
// is the service's decision (escalation/policy_files.py, policy_views.py); what people
// typed goes on the page as text.
"use strict";

const policiesAdmin = { pane: null, file: null, teams: [] };

adminSection({ id: "escalation", label: "Escalation", roles: ["admin", "supervisor"], open: openPolicies });

// Policies and contacts are shared by every organisation: only the whole service's
// supervisors (its safety leads) and admins read and change them (docs/security.md).
async function openPolicies(pane) {
  if (policiesAdmin.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    policiesAdmin.pane = pane;
    const parts = [el("h2", "Escalation policies and contacts")];
    if (!serviceWide()) {
      parts.push(el("p", "Policies and contacts are shared by every organisation, so only accounts of the whole service read or change them. The preview shows whom your organisation's alerts would reach.", "note"));
    }
    parts.push(policiesBox("ae-preview"));
    if (serviceWide()) parts.splice(1, 0, policiesBox("ae-file"), policiesBox("ae-contacts"));
    pane.replaceChildren(...parts);
    if (serviceWide()) {
      policiesAdmin.file = fileEditor({
        box: $("#ae-file"), prefix: "ae", title: "Policy file", label: "Policy file (YAML)",
        about: "The file `vigil policy load` reads: every contact and policy. Saving replaces them all at once, after the same checks as `vigil policy check`; nothing changes if any of it is wrong. Running escalations keep the policy they started with.",
        url: "/api/v1/escalation/file", downloadName: "vigil-policies.yaml",
        counted: (r) => `${r.contacts} contacts, ${r.policies} policies`,
        onLoaded: (file) => drawContacts(file.contacts),
      });
    }
    await drawPreviewForm();
  }
  if (serviceWide()) await policiesAdmin.file.load();
}

function policiesBox(id) {
  const box = el("section");
  box.id = id;
  return box;
}

// ---- contacts ------------------------------------------------------------------------

function drawContacts(contacts) {
  const box = $("#ae-contacts");
  const editing = box.querySelector("form");
  const rows = contacts.map((c) => {
    const cells = [c.name, c.phone, c.webhook, c.arc, c.backup_for.join(", ")];
    if (serviceWide()) cells.push(adminButton("Edit", () => contactForm(c)));
    return cells;
  });
  const heads = ["Name", "Phone", "Webhook", "Alarm centre", "Backup for"];
  if (serviceWide()) heads.push("");
  const parts = [el("h3", "Contacts"), adminTable(heads, rows, "No contacts are stored.")];
  if (serviceWide()) parts.push(adminButton("Add a contact", () => contactForm(null)));
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
      await policiesAdmin.file.refresh();
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
  if (serviceWide()) teams.unshift(["", "No team"]);
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
