// Vigil console: what is known about the place an alert came from. In the alert's pane,
// "Cautions at this address": the place and how it was matched, each caution, and the
// previous incidents there with their outcomes; a one-line flag with the cautions' kinds at a
// glance under the summary. In the incident's review, "Make a caution from this incident".
// The service records an operator's read of the cautions in the alert's timeline, so they are
// fetched once each time the alert is opened (console.js's select()), never on a refresh.
// Also what the Admin tab's places section (admin_places.js) shares: a caution's lines and
// its form's fields.
"use strict";

const cautions = { id: null, seq: 0, form: null };

// A day ("12 Mar 2026"), for dates that are days (review, expiry) and times people read as
// days (when a caution was recorded). A "YYYY-MM-DD" is that day here, not UTC's midnight.
function dayText(value) {
  if (!value) return "";
  const d = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T12:00:00`) : new Date(value);
  return d.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

// A day `months` from today, as a date field wants it ("2027-03-12").
function monthsAhead(months) {
  const t = new Date();
  const d = new Date(t.getFullYear(), t.getMonth() + months, t.getDate());
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// How a place was matched to the alert, in words.
function matchedText(found) {
  if (found.matched_by === "chosen") return "chosen by the worker";
  if (found.matched_by === "position") {
    return found.distance_m != null ? `nearest place, ${Math.round(found.distance_m)}\u00a0m away` : "nearest place";
  }
  return "";
}

// One caution as people read it: its kind, its text, who may see it, who recorded it and when.
function cautionItem(c) {
  const li = el("li", "", `caution caution-${c.kind}`);
  li.dataset.caution = c.id;
  li.append(el("strong", c.kind_label || word("caution_kind", c.kind), "caution-kind"), " ",
    el("span", c.text, "caution-text"));
  const by = [`Recorded by ${who(c.recorded_by)} on ${dayText(c.recorded_at)}`];
  if (c.team) by.push(`for ${c.team} only`);
  if (c.review_on) by.push(`review by ${dayText(c.review_on)}`);
  by.push(`expires ${dayText(c.expires_on)}`);
  if (c.source_alert_id) by.push(`from incident #${c.source_alert_id}`);
  li.append(el("span", by.join(" · "), "caution-by"));
  return li;
}

// A previous incident at the place: what, who, when, and how it ended (or that it has not).
function incidentText(p) {
  const kind = p.duress ? `${word("type", p.type)} (duress)` : word("type", p.type);
  const end = p.outcome ? word("outcome", p.outcome) : `${word("state", p.state)}, not resolved`;
  return [`#${p.alert_id} ${kind}`, p.worker, `${dayText(p.raised_at)}, ${clock(p.raised_at)}`, end]
    .filter(Boolean).join(" \u00b7 ");
}

// An incident's line; for those who may review incidents, a link that opens it in Review.
function incidentItem(p) {
  const li = el("li", "", "caution-incident");
  if (state.meta?.supervising_roles.includes(state.me?.role)) {
    const a = el("a", incidentText(p));
    a.href = "#";
    a.dataset.incident = p.alert_id;
    a.title = "Open this incident in Review";
    a.addEventListener("click", (e) => {
      e.preventDefault();
      show("review");
      openIncident(p.alert_id);  // review.js
    });
    li.append(a);
  } else {
    li.append(el("span", incidentText(p)));
  }
  return li;
}

// The pane's box and the flag under the summary, for what GET /alerts/{id}/cautions said.
function cautionsShow(found) {
  const box = $("#d-cautions");
  const flag = $("#d-caution-flag");
  if (!found?.place) {
    box.hidden = true; box.replaceChildren();
    flag.hidden = true; flag.replaceChildren();
    return;
  }
  const list = found.cautions || [];
  const head = el("h3", "", "caution-head");
  head.append(el("span", "Cautions at this address"));
  head.append(el("span", list.length ? `${list.length} caution${list.length > 1 ? "s" : ""}` : "none recorded",
    list.length ? "caution-count" : "caution-count none"));
  const place = el("p", "", "caution-place");
  place.append(el("strong", found.place.address));
  const how = matchedText(found);
  if (how) place.append(` (${how})`);
  const parts = [head, place];
  if (list.length) {
    const ul = el("ul", "", "caution-list");
    ul.append(...list.map(cautionItem));
    parts.push(ul);
  }
  const previous = found.previous || [];
  if (previous.length) {
    parts.push(el("h4", "Previous incidents here"));
    const ul = el("ul", "", "caution-incidents");
    ul.append(...previous.map(incidentItem));
    parts.push(ul);
  } else {
    parts.push(el("p", "No previous incidents here.", "note"));
  }
  box.replaceChildren(...parts);
  box.classList.toggle("has-cautions", list.length > 0);
  box.hidden = false;
  // At a glance, before the actions: the kinds alone, so that Take charge stays in reach.
  flag.hidden = !list.length;
  flag.replaceChildren();
  if (list.length) {
    const kinds = [...new Set(list.map((c) => c.kind_label || word("caution_kind", c.kind)))];
    const more = el("a", "details below");
    more.href = "#d-cautions";
    more.addEventListener("click", (e) => {
      e.preventDefault();
      box.scrollIntoView({ block: "start" });
    });
    flag.append(el("strong", "\u26a0 Cautions at this address: "), kinds.join(" \u00b7 "), " (", more, ")");
  }
}

// Once per opening of an alert (console.js's select()): the service writes the read into the
// alert's timeline. Another alert's cautions never stay on screen while this one's load.
async function drawCautions(a) {
  const mine = ++cautions.seq;
  if (cautions.id !== a.id) { cautions.id = a.id; cautionsShow(null); }
  let found;
  try { found = await api(`/api/v1/alerts/${a.id}/cautions`); } catch { return; }
  if (mine !== cautions.seq || state.selected !== a.id) return;
  cautionsShow(found);
}

// ---- a caution's form, here and in the Admin tab ----------------------------------------
// The teams a caution may be limited to: a team-scoped user's own team only (the service
// refuses others); else "Whole organisation" and each team of the organisation, those with
// no worker yet too (GET /api/v1/teams: the caller's, by name).
async function cautionTeams(orgId) {
  const teams = (await api("/api/v1/teams")).filter((t) => orgId == null || t.org_id === orgId);
  if (state.me.team_id != null) {
    const mine = teams.find((t) => t.id === state.me.team_id);
    return [[String(state.me.team_id), mine ? mine.name : "My team"]];
  }
  return [["", "Whole organisation"], ...teams.map((t) => [String(t.id), `${t.name} only`])];
}

// adminField specs for a caution (`c`, to edit) or a new one: kind, text, expiry (a year
// ahead unless said), review date, who may see it. The service checks every one of them.
function cautionFields(teams, c = {}) {
  const kinds = Object.entries(state.meta?.labels?.caution_kind || {});
  return [
    { name: "kind", label: "Kind", type: "select", required: true, value: c.kind,
      options: [["", "Choose a kind…"], ...kinds] },
    { name: "text", label: "What to know", type: "textarea", required: true, value: c.text,
      attrs: { maxlength: "2000", placeholder: "What a worker going there, or an operator helping them, must know" } },
    { name: "expires_on", label: "Expires on", type: "date", required: true, value: c.expires_on || monthsAhead(12),
      help: "At most 3 years ahead. Hidden after this day, then deleted." },
    { name: "review_on", label: "Review on", type: "date", value: c.id ? c.review_on : monthsAhead(6),
      help: "When someone should check it is still true." },
    { name: "team_id", label: "Seen by", type: "select", options: teams,
      value: c.id ? (c.team_id == null ? "" : String(c.team_id)) : teams[0]?.[0] },
  ];
}

// The form's values as the API takes them: no review date is null, the whole organisation
// is no team.
function cautionBody(v) {
  return { kind: v.kind, text: v.text, expires_on: v.expires_on, review_on: v.review_on || null,
    team_id: v.team_id === "" || v.team_id === undefined ? null : Number(v.team_id) };
}

// ---- the incident's review: make a caution from it --------------------------------------
// Only for incidents the person may write cautions about (admins and supervisors: those who
// see Review). The place is the one the alert matched; with none, the form asks for the
// address and the service makes the place at the alert's position.
async function drawIncidentCaution(a) {
  const box = $("#rv-caution");
  box.replaceChildren();
  box.hidden = false;
  const open = adminButton("Make a caution from this incident…", () => incidentCautionForm(a, box, open), "rv-caution-open");
  box.append(open);
}

async function incidentCautionForm(a, box, open) {
  open.disabled = true;
  let found, teams;
  try {
    [found, teams] = await Promise.all([api(`/api/v1/alerts/${a.id}/cautions`), cautionTeams(a.org_id)]);
  } catch (err) {
    open.disabled = false;
    reviewError(err.message);  // review.js
    return;
  }
  if (review.incident?.id !== a.id) return;
  open.hidden = true;
  const fields = cautionFields(teams);
  const where = el("div", "", "note rv-caution-where");
  if (found.place) {
    where.append("The caution goes on ", el("strong", found.place.address),
      `, the place this alert matched${matchedText(found) ? ` (${matchedText(found)})` : ""}.`);
    // What is already known there, so as not to record it twice.
    if (found.cautions?.length) {
      const known = el("ul", "", "caution-list");
      known.append(...found.cautions.map(cautionItem));
      where.append(" Already recorded there:", known);
    }
  } else {
    where.append("This alert matched no place: give the address, and the place is made at the alert's position.");
    fields.push({ name: "address", label: "Address", required: true, attrs: { maxlength: "300" },
      help: "As people write it: Flat 3, 12 Elm Street" });
  }
  const form = adminForm({
    legend: "Make a caution from this incident",
    fields,
    submitLabel: "Make the caution",
    className: "rv-caution-form",
    async submit(v) {
      const body = cautionBody(v);
      if (!found.place) body.address = v.address;
      const c = await adminSend(`/api/v1/incidents/${a.id}/caution`, "POST", body);
      form.querySelector("button[type=submit]").hidden = true;
      for (const input of form.elements) input.disabled = true;
      cancel.disabled = false;
      cancel.textContent = "Close";
      return `Caution made: ${c.kind_label || word("caution_kind", c.kind)}, expires ${dayText(c.expires_on)}. It shows for alerts at this place from now on.`;
    },
  });
  const cancel = adminButton("Cancel", () => { form.remove(); where.remove(); open.hidden = false; open.disabled = false; });
  form.querySelector("button[type=submit]").after(cancel);
  form.insertBefore(where, form.children[1]);
  box.append(form);
  form.elements.kind.focus();
}
