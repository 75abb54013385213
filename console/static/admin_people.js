// Admin tab: workers (their PINs set by an administrator or chosen by the worker through a
// one-time link), teams and organisations. Everything typed is shown with textContent; what
// may be changed, and every refusal's words, are the service's (monitor/orgs).
"use strict";

const people = { workers: [], teams: [], orgs: [] };

async function loadPeople() {
  const [workers, teams, orgs] = await Promise.all([
    api("/api/v1/workers"), api("/api/v1/teams"), api("/api/v1/orgs")]);
  Object.assign(people, { workers, teams, orgs });
}

// Where a section's pieces go: a heading, a line for what happened, the table, then forms.
// The section is drawn afresh each time it is shown (a new team must be offered); what was
// typed in its add form is kept for `putBack`: someone who goes to Teams to add the team a
// new worker needs comes back to the worker as they left them.
function peoplePane(pane, title) {
  const form = pane.querySelector(".ad-add form");
  const typed = form ? [...form.elements].filter((e) => e.name)
    .map((e) => [e.name, e.type === "checkbox" ? e.checked : e.value]) : [];
  pane.replaceChildren(el("h2", title));
  const parts = { typed };
  for (const name of ["list", "edit", "add"]) {
    parts[name] = el("div", null, `ad-${name}`);
    pane.append(parts[name]);
  }
  return parts;
}

function putBack(parts) {
  const form = parts.add.querySelector("form");
  for (const [name, value] of form ? parts.typed : []) {
    const input = form.elements.namedItem(name);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value;
    else if (input.tagName !== "SELECT" || [...input.options].some((o) => o.value === value)) input.value = value;
  }
}

function teamOptions(blank) {
  const options = people.teams.map((t) => [String(t.id),
    people.orgs.length > 1 ? `${t.name} (${t.org})` : t.name]);
  return blank ? [["", blank], ...options] : options;
}

function orgOptions() { return people.orgs.map((o) => [String(o.id), o.name]); }

const PIN_FIELDS = [
  { name: "cancel_pin", label: "Cancel PIN", type: "password", attrs: { inputmode: "numeric", maxlength: "8", autocomplete: "off" } },
  { name: "cancel_pin_again", label: "Cancel PIN again", type: "password", attrs: { inputmode: "numeric", maxlength: "8", autocomplete: "off" } },
  { name: "duress_pin", label: "Duress PIN", type: "password", attrs: { inputmode: "numeric", maxlength: "8", autocomplete: "off" } },
  { name: "duress_pin_again", label: "Duress PIN again", type: "password", attrs: { inputmode: "numeric", maxlength: "8", autocomplete: "off" } },
];

function pinsOf(values) {
  return { cancel_pin: values.cancel_pin, cancel_pin_again: values.cancel_pin_again,
    duress_pin: values.duress_pin, duress_pin_again: values.duress_pin_again };
}

const idOrNull = (v) => (v === "" || v === undefined ? null : Number(v));

// -- workers ---------------------------------------------------------------------------------

adminSection({ id: "workers", label: "Workers", roles: ["supervisor", "admin"], async open(pane) {
  const parts = peoplePane(pane, "Workers");
  parts.find = workerFinder(parts);
  parts.list.before(parts.find);
  await loadPeople();
  drawWorkers(parts);
  parts.add.replaceChildren(addWorkerForm(parts));
  putBack(parts);
} });

// A long list is searched by typing: words of the name, team, organisation or phone, in any
// order ("housing amira"), as the list is redrawn.
function workerFinder(parts) {
  const box = el("div", null, "adp-find");
  box.setAttribute("role", "search");
  const field = adminField({ name: "find", label: "Find a worker", type: "search",
    attrs: { placeholder: "Name, team, organisation or phone", autocomplete: "off", id: "adp-find" } });
  field.querySelector("input").addEventListener("input", () => drawWorkers(parts));
  parts.found = el("span", "", "note adp-found");
  parts.found.setAttribute("role", "status");
  box.append(field, parts.found);
  return box;
}

function workerMatches(w, words) {
  const phone = w.phone || "";
  const text = [w.name, w.team, w.org, phone, phone.replace(/[\s().-]/g, "")].join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

function drawWorkers(parts) {
  const query = parts.find ? parts.find.querySelector("input").value.trim() : "";
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = people.workers.filter((w) => workerMatches(w, words));
  if (parts.found) {
    parts.found.textContent = words.length ? `${shown.length} of ${people.workers.length} workers` : "";
  }
  const rows = shown.map((w) => {
    const actions = el("span");
    actions.append(
      adminButton("Edit", () => editWorker(parts, w)),
      adminButton("Set PINs", () => workerPins(parts, w)),
      adminButton("PIN link", () => pinLink(parts, w)));
    return [w.name, w.team || "—", w.org || "", w.phone || "—", w.pins_set ? "set" : "not set", actions];
  });
  const table = adminTable(["Name", "Team", "Organisation", "Phone", "PINs", ""], rows,
    words.length ? `No worker matches "${query}".` : "No workers yet.");
  table.id = "adp-workers";
  parts.list.replaceChildren(table);
}

async function refreshWorkers(parts) {
  people.workers = await api("/api/v1/workers");
  drawWorkers(parts);
}

function addWorkerForm(parts) {
  const fields = [
    { name: "name", label: "Name", required: true, attrs: { maxlength: "200" } },
    { name: "phone", label: "Phone", type: "tel", help: "with its country code: +44 7700 900123" },
    { name: "team_id", label: "Team", type: "select",
      options: teamOptions(state.me.team_id === null ? "No team" : null) },
  ];
  if (serviceWide()) fields.push({ name: "org_id", label: "Organisation (without a team)", type: "select", options: [["", "—"], ...orgOptions()] });
  fields.push({ name: "responder_notes", label: "Notes for responders", type: "textarea",
    help: "medical, vehicle, anything a responder should know" });
  fields.push(...PIN_FIELDS.map((f, i) => (i === 0 ? { ...f, help: "Leave the PINs blank to send the worker a link to choose their own." } : f)));
  return adminForm({ legend: "Add a worker", submitLabel: "Add worker", fields, className: "ad-worker-add",
    async submit(v, form) {
      const typed = PIN_FIELDS.some((f) => v[f.name] !== "");
      const w = await adminSend("/api/v1/workers", "POST", {
        name: v.name, phone: v.phone, responder_notes: v.responder_notes,
        team_id: idOrNull(v.team_id), org_id: idOrNull(v.org_id),
        pins: typed ? pinsOf(v) : null });
      form.reset();
      await refreshWorkers(parts);
      parts.add.querySelector(".adp-next")?.remove();
      if (!w.pins_set) {
        // What the blank PINs asked for, one press away, rather than in the list above.
        const next = adminButton(`Make ${w.name}'s PIN link`, () => { next.remove(); pinLink(parts, w); }, "adp-next");
        form.after(next);
        next.focus();
      }
      return `${w.name} added${w.pins_set ? " with their PINs" : ": give them a PIN link to choose their PINs"}.`;
    } });
}

function editWorker(parts, w) {
  const form = adminForm({ legend: `Edit ${w.name}`, submitLabel: "Save", className: "ad-worker-edit",
    fields: [
      { name: "name", label: "Name", value: w.name, required: true },
      { name: "phone", label: "Phone", type: "tel", value: w.phone },
      { name: "team_id", label: "Team", type: "select", value: w.team_id ?? "",
        options: teamOptions(state.me.team_id === null ? "No team" : null) },
      { name: "responder_notes", label: "Notes for responders", type: "textarea", value: w.responder_notes },
    ],
    async submit(v) {
      const saved = await adminSend(`/api/v1/workers/${w.id}`, "PUT", {
        name: v.name, phone: v.phone, responder_notes: v.responder_notes, team_id: idOrNull(v.team_id) });
      Object.assign(w, saved);
      await refreshWorkers(parts);
      return `${saved.name} saved${saved.team ? ` (team ${saved.team})` : ""}.`;
    } });
  showEdit(parts, form);
}

function workerPins(parts, w) {
  const form = adminForm({ legend: `New PINs for ${w.name}`, submitLabel: "Set PINs", className: "ad-worker-pins",
    fields: PIN_FIELDS,
    async submit(v, f) {
      await adminSend(`/api/v1/workers/${w.id}/pins`, "PUT", pinsOf(v));
      f.reset();
      await refreshWorkers(parts);
      return `New PINs set for ${w.name}. Tell them in person; they are not shown again.`;
    } });
  showEdit(parts, form);
}

async function pinLink(parts, w) {
  const box = el("div", null, "ad-form adp-pin-link");
  box.append(el("h3", `PIN link for ${w.name}`));
  showEdit(parts, box);
  try {
    const made = await adminSend(`/api/v1/workers/${w.id}/pin-links`, "POST");
    const qr = el("img", null, "ad-qr");
    qr.alt = `QR code of the PIN link for ${w.name}`;
    qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(made.qr_svg)}`;
    const link = el("input", null, "adp-link");
    link.readOnly = true;
    link.value = made.link;
    link.setAttribute("aria-label", "PIN link");
    box.append(qr, el("p", `Shown this once: give it to ${w.name} now, to open on their phone. ` +
      `It works once, until ${new Date(made.expires_at).toLocaleString()}; an earlier link no longer works.`, "note"), link,
      adminButton("Copy", () => navigator.clipboard?.writeText(made.link)));
    link.focus();  // made after the box was shown: the keyboard goes to it, ready to copy
    link.select();
  } catch (e) {
    adminStatus(box, e);
  }
}

function showEdit(parts, node) {
  parts.edit.replaceChildren(node, adminButton("Close", () => parts.edit.replaceChildren()));
  node.scrollIntoView({ block: "nearest" });
  node.querySelector("input, select, textarea")?.focus();
}

// -- teams -----------------------------------------------------------------------------------

adminSection({ id: "teams", label: "Teams", roles: ["supervisor", "admin"], async open(pane) {
  const parts = peoplePane(pane, "Teams");
  await loadPeople();
  drawTeams(parts);
  if (state.me.team_id !== null) {
    parts.add.replaceChildren(el("p", "New teams are added by your organisation's supervisors or administrators.", "note"));
    return;
  }
  const fields = [{ name: "name", label: "Name", required: true }];
  if (serviceWide()) fields.push({ name: "org_id", label: "Organisation", type: "select", options: orgOptions() });
  parts.add.replaceChildren(adminForm({ legend: "Add a team", submitLabel: "Add team", fields, className: "ad-team-add",
    async submit(v, form) {
      const t = await adminSend("/api/v1/teams", "POST", { name: v.name, org_id: idOrNull(v.org_id) });
      form.reset();
      people.teams = await api("/api/v1/teams");
      drawTeams(parts);
      return `Team ${t.name} added to ${t.org}.`;
    } }));
  putBack(parts);
} });

function drawTeams(parts) {
  const rows = people.teams.map((t) => [t.name, t.org, String(t.workers),
    adminButton("Rename", () => showEdit(parts, adminForm({ legend: `Rename ${t.name}`, submitLabel: "Rename",
      className: "ad-team-edit", fields: [{ name: "name", label: "Name", value: t.name, required: true }],
      async submit(v) {
        const saved = await adminSend(`/api/v1/teams/${t.id}`, "PUT", { name: v.name });
        people.teams = await api("/api/v1/teams");
        drawTeams(parts);
        return `Renamed ${saved.name}.`;
      } })))]);
  const table = adminTable(["Team", "Organisation", "Workers", ""], rows, "No teams yet.");
  table.id = "adp-teams";
  parts.list.replaceChildren(table);
}

// -- organisations ---------------------------------------------------------------------------

adminSection({ id: "orgs", label: "Organisations", roles: ["admin"], async open(pane) {
  const parts = peoplePane(pane, "Organisations");
  people.orgs = await api("/api/v1/orgs");
  drawOrgs(parts);
  if (!serviceWide()) {
    parts.add.replaceChildren(el("p", "Organisations are added and changed by the service's own administrators.", "note"));
    return;
  }
  parts.add.replaceChildren(adminForm({ legend: "Add an organisation", submitLabel: "Add organisation", className: "ad-org-add",
    fields: ORG_FIELDS({}),
    async submit(v, form) {
      const o = await adminSend("/api/v1/orgs", "POST", v);
      form.reset();
      people.orgs = await api("/api/v1/orgs");
      drawOrgs(parts);
      return `${o.name} added.`;
    } }));
  putBack(parts);
} });

const ORG_FIELDS = (o) => [
  { name: "name", label: "Name", value: o.name, required: true },
  { name: "require_visit_end_pin", label: "Workers end a visit only with their PIN", type: "checkbox", value: o.require_visit_end_pin },
];

function drawOrgs(parts) {
  const wide = serviceWide();
  const rows = people.orgs.map((o) => [o.name, o.require_visit_end_pin ? "yes" : "no",
    String(o.teams), String(o.workers),
    wide ? adminButton("Edit", () => showEdit(parts, adminForm({ legend: `Edit ${o.name}`, submitLabel: "Save",
      className: "ad-org-edit", fields: ORG_FIELDS(o),
      async submit(v) {
        const saved = await adminSend(`/api/v1/orgs/${o.id}`, "PUT", v);
        people.orgs = await api("/api/v1/orgs");
        drawOrgs(parts);
        return `${saved.name} saved.`;
      } }))) : ""]);
  const table = adminTable(["Organisation", "PIN to end a visit", "Teams", "Workers", ""], rows, "No organisations yet.");
  table.id = "adp-orgs";
  parts.list.replaceChildren(table);
}
