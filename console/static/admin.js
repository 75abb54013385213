// Administration in the console: people, devices, escalation and places, each a section
// in its own file (admin_*.js) registered here with the roles that may open it. This file
// holds only what they share: the section tabs, forms with their refusals shown beside
// them, and tables. What anyone may change is decided by the service, never here.
"use strict";

const adminSections = [];
const admin = { built: null, current: null };

// `open(pane)` runs each time the section is shown, to load what it lists afresh.
function adminSection({ id, label, roles, open }) {
  adminSections.push({ id, label, roles, open });
}

function adminSectionsFor(role) { return adminSections.filter((s) => s.roles.includes(role)); }

function openAdmin(id) {
  const sections = adminSectionsFor(state.me.role);
  if (admin.built !== state.me.username) {  // once per sign-in: another user sees others
    admin.built = state.me.username;
    $("#ad-tabs").replaceChildren(...sections.map((s) => {
      const b = el("button", s.label, "subtab");
      b.type = "button";
      b.id = `ad-tab-${s.id}`;
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => openAdmin(s.id));
      return b;
    }));
    $("#ad-panes").replaceChildren(...sections.map((s) => {
      const pane = el("div", null, "ad-pane");
      pane.id = `ad-${s.id}`;
      pane.hidden = true;
      return pane;
    }));
    admin.current = null;
  }
  const chosen = sections.find((s) => s.id === (id || admin.current)) || sections[0];
  if (!chosen) return;
  admin.current = chosen.id;
  for (const s of sections) {
    const on = s.id === chosen.id;
    $(`#ad-tab-${s.id}`).classList.toggle("active", on);
    $(`#ad-tab-${s.id}`).setAttribute("aria-pressed", String(on));
    $(`#ad-${s.id}`).hidden = !on;
  }
  Promise.resolve(chosen.open($(`#ad-${chosen.id}`))).catch((e) => adminStatus($(`#ad-${chosen.id}`), e));
}

$("#tab-admin").addEventListener("click", () => show("admin"));

// Whether the account sees the whole service, not one organisation or team: what all
// organisations share (policies, procedures) is only theirs to read and change.
function serviceWide() { return state.me.org_id === null && state.me.team_id === null; }

// A JSON request; the error it throws carries the service's reason in words (api()).
function adminSend(path, method, body) {
  return api(path, { method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
}

// The line under a form or at the top of a pane that says what happened: a refusal (an
// Error, in red, announced) or what was done.
function adminStatus(where, outcome) {
  let line = where.querySelector(":scope > .ad-status");
  if (!line) {
    line = el("p", null, "ad-status");
    line.setAttribute("role", "status");
    where.append(line);
  }
  const refused = outcome instanceof Error;
  line.classList.toggle("error", refused);
  line.setAttribute("role", refused ? "alert" : "status");
  line.textContent = refused ? `Not saved: ${outcome.message}` : outcome;
  return line;
}

// A form from field specs: {name, label, type: text|password|number|date|email|tel|
// checkbox|select|textarea, options: [[value, label]…], value, required, help, attrs}.
// `submit(values, form)` saves; what it returns is shown as done, what it throws as refused,
// and the form keeps what was typed when refused.
function adminForm({ legend, fields, submitLabel, submit, className }) {
  const form = el("form", null, `ad-form${className ? ` ${className}` : ""}`);
  if (legend) form.append(el("h3", legend));
  for (const f of fields) form.append(adminField(f));
  const go = el("button", submitLabel || "Save");
  go.type = "submit";
  form.append(go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const done = await submit(adminValues(form, fields), form);
      adminStatus(form, done || "Saved.");
    } catch (err) {
      adminStatus(form, err);
    } finally {
      go.disabled = false;
      // Pressed, the button lost the focus when it was turned off: give it back, so that
      // the keyboard goes on from where it was (not from the top of the page).
      if (form.isConnected && (!document.activeElement || document.activeElement === document.body)) {
        go.focus({ preventScroll: true });
      }
    }
  });
  return form;
}

function adminField(f) {
  const label = el("label", null, `ad-field${f.type === "checkbox" ? " ad-check" : ""}`);
  let input;
  if (f.type === "select") {
    input = el("select");
    for (const [value, text] of f.options || []) input.append(new Option(text, value));
    if (f.value !== undefined && f.value !== null) input.value = String(f.value);
  } else if (f.type === "textarea") {
    input = el("textarea");
    input.value = f.value ?? "";
  } else {
    input = el("input");
    input.type = f.type || "text";
    if (f.type === "checkbox") input.checked = Boolean(f.value);
    else input.value = f.value ?? "";
  }
  input.name = f.name;
  if (f.required) input.required = true;
  for (const [k, v] of Object.entries(f.attrs || {})) input.setAttribute(k, v);
  if (f.type === "checkbox") label.append(input, ` ${f.label}`);
  else label.append(el("span", f.label), input);
  if (f.help) label.append(el("small", f.help, "note"));
  return label;
}

// Checkboxes as booleans, numbers as numbers, the rest as typed.
function adminValues(form, fields) {
  const values = {};
  for (const f of fields) {
    const input = form.elements.namedItem(f.name);
    if (f.type === "checkbox") values[f.name] = input.checked;
    else if (f.type === "number") values[f.name] = input.value === "" ? null : Number(input.value);
    else values[f.name] = input.value;
  }
  return values;
}

// A table: `rows` are arrays of cells, each a string or a node (a button, a link).
function adminTable(headers, rows, empty) {
  if (!rows.length && empty) return el("p", empty, "note");
  const table = el("table", null, "ad-table");
  // Said outright: on a phone the rows are cards (admin.css), and display:block would take
  // a table's meaning away from a screen reader in some browsers.
  table.setAttribute("role", "table");
  const head = el("tr");
  head.setAttribute("role", "row");
  for (const h of headers) {
    const th = el("th", h);
    th.setAttribute("role", "columnheader");
    head.append(th);
  }
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  for (const cells of rows) {
    const tr = el("tr");
    tr.setAttribute("role", "row");
    cells.forEach((c, i) => {
      const td = el("td");
      td.setAttribute("role", "cell");
      // On a phone each row is a card, and each value says what it is (admin.css).
      if (headers[i]) td.dataset.label = headers[i];
      if (c instanceof Node) td.append(c); else td.textContent = c ?? "";
      tr.append(td);
    });
    body.append(tr);
  }
  table.append(body);
  return table;
}

function adminButton(text, onClick, cls) {
  const b = el("button", text, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}
