// Vigil console, Admin tab: places and their cautions (admins and supervisors, each within
// their scope). The review reminders first (cautions whose review date has come, or that
// expire soon), then finding, adding and changing places (the position picked on a map or
// typed), and each place's cautions. The service checks everything and says why it refuses
// (shown beside the form: admin.js); what is typed goes on the page as text only.
"use strict";

const places = { pane: null, q: "", current: null, orgs: new Map(), teams: null };

adminSection({ id: "places", label: "Places", roles: ["admin", "supervisor"], open: openPlaces });

async function openPlaces(pane) {
  if (places.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    places.pane = pane;
    places.current = null;
    places.teams = null;
    pane.replaceChildren(el("h2", "Places and cautions"),
      placesBox("ap-review"), placesBox("ap-find"), placesBox("ap-place"));
    drawFind();
  }
  await Promise.all([loadReview(), searchPlaces(), places.current ? loadPlace(places.current) : null,
    loadPlaceOrgs()]);
}

// Whose a new place is, for someone who sees every organisation: all of them, not only those
// the search has found places of (a new organisation has none yet).
async function loadPlaceOrgs() {
  if (state.me.org_id != null) return;
  for (const o of await api("/api/v1/orgs")) places.orgs.set(o.id, o.name);
}

function placesBox(id) {
  const box = el("section");
  box.id = id;
  return box;
}

// What was done (or refused) at the top of a box, above what it lists.
function placesSaid(box, outcome) {
  let said = box.querySelector(":scope > .ap-said");
  if (!said) { said = el("div", null, "ap-said"); box.prepend(said); }
  adminStatus(said, outcome);
}

// ---- review reminders ----------------------------------------------------------------------
async function loadReview() {
  const box = $("#ap-review");
  const due = await api("/api/v1/cautions/review");
  const at = new Set(due.map((c) => c.place_id));
  const head = el("h3", due.length
    ? `Due for review: ${due.length} caution${due.length > 1 ? "s" : ""} at ${at.size} place${at.size > 1 ? "s" : ""}`
    : "Due for review: none");
  const rows = due.map((c) => [c.address, c.kind_label || word("caution_kind", c.kind), c.text,
    c.review_on ? dayText(c.review_on) : "", dayText(c.expires_on),
    adminButton("Open the place", () => loadPlace(c.place_id, true))]);
  box.replaceChildren(head,
    el("p", "Cautions whose review date has come, or that expire within 14 days: check each is still true, then change its dates, or delete it.", "note"),
    adminTable(["Address", "Kind", "What to know", "Review on", "Expires", ""], rows, "No caution is due for review."));
}

// ---- finding and adding places -------------------------------------------------------------
function drawFind() {
  const box = $("#ap-find");
  const find = el("form", null, "ad-form ap-search");
  find.setAttribute("role", "search");
  const q = adminField({ name: "q", label: "Find a place", type: "search",
    attrs: { placeholder: "Words of the address, in any order", maxlength: "200" } });
  const go = el("button", "Search");
  go.type = "submit";
  find.append(q, go);
  find.addEventListener("submit", (e) => {
    e.preventDefault();
    places.q = find.elements.q.value.trim();
    searchPlaces().catch((err) => adminStatus(find, err));
  });
  // The button makes way for its form: the keyboard goes to the form's first field, and back
  // to the button on Cancel (hidden, it would have left the focus nowhere).
  const add = adminButton("Add a place…", () => {
    add.hidden = true;
    const form = addPlaceForm(add);
    box.append(form);
    pickerShown(box);
    form.elements.address.focus();
  });
  box.replaceChildren(el("h3", "Places"), find, el("div", null, "ap-results"), add);
}

async function searchPlaces() {
  const q = new URLSearchParams({ limit: "50" });
  if (places.q) q.set("q", places.q);
  const found = await api(`/api/v1/places?${q}`);
  for (const p of found) places.orgs.set(p.org_id, p.org);
  const wide = state.me.org_id == null;
  const rows = found.map((p) => [p.address, ...(wide ? [p.org] : []), positionText(p),
    String(p.caution_count), p.review_due_count ? String(p.review_due_count) : "",
    adminButton("Open", () => loadPlace(p.id, true))]);
  const headers = ["Address", ...(wide ? ["Organisation"] : []), "Position", "Cautions", "Due for review", ""];
  $("#ap-find .ap-results").replaceChildren(adminTable(headers, rows,
    places.q ? `No place matches "${places.q}".` : "No places yet: add one below."));
}

function positionText(p) { return p.lat != null ? coordsText(p.lat, p.lon) : "none"; }  // fleetmap.js

// The position's fields and a map to pick it on: a click on the map fills them, and what is
// typed moves the marker.
function positionFields(p = {}) {
  return [
    { name: "lat", label: "Latitude", type: "number", value: p.lat ?? "", attrs: { step: "any", min: "-90", max: "90" } },
    { name: "lon", label: "Longitude", type: "number", value: p.lon ?? "", attrs: { step: "any", min: "-180", max: "180" } },
  ];
}

let pickerCount = 0;
function addPicker(form) {
  const box = el("div", null, "ap-map");
  box.id = `ap-map-${++pickerCount}`;
  box.setAttribute("role", "application");
  box.setAttribute("aria-label", "Map: click to set the place's position");
  const hint = el("small", "Click the map to set the position, or type it.", "note ap-map-hint");
  form.querySelector("button[type=submit]").before(box, hint);
  form.picker = { box, map: null, marker: null };
  return form;
}

// Leaflet needs its box on screen to size itself: maps are made once their form shows.
function pickerShown(where) {
  for (const form of where.querySelectorAll("form")) {
    const p = form.picker;
    if (!p || p.map) continue;
    const { map } = makeMap(p.box.id);  // fleetmap.js: the configured tiles, or a blank map
    p.map = map;
    const lat = form.elements.lat, lon = form.elements.lon;
    const put = () => {
      if (lat.value === "" || lon.value === "" || !Number.isFinite(Number(lat.value)) || !Number.isFinite(Number(lon.value))) return;
      const at = [Number(lat.value), Number(lon.value)];
      if (!p.marker) p.marker = L.circleMarker(at, { radius: 8, color: "#1f5fbf" }).addTo(map);
      else p.marker.setLatLng(at);
    };
    put();
    if (p.marker) map.setView(p.marker.getLatLng(), 16);
    map.on("click", (e) => {
      lat.value = e.latlng.lat.toFixed(6);
      lon.value = e.latlng.lng.toFixed(6);
      put();
    });
    lat.addEventListener("change", put);
    lon.addEventListener("change", put);
  }
}

function addPlaceForm(button) {
  const fields = [{ name: "address", label: "Address", required: true, attrs: { maxlength: "300" },
    help: "As people write it: Flat 3, 12 Elm Street" }, ...positionFields()];
  // Someone who sees every organisation says whose place it is (the service asks, if there
  // are several); others add to their own.
  if (state.me.org_id == null) {
    fields.push({ name: "org_id", label: "Organisation", type: "select",
      options: [["", "Choose…"], ...[...places.orgs].sort((a, b) => a[1].localeCompare(b[1]))
        .map(([id, name]) => [String(id), name])] });
  }
  const form = adminForm({
    legend: "Add a place",
    fields,
    submitLabel: "Add the place",
    className: "ap-add",
    async submit(v) {
      const body = { address: v.address, lat: v.lat, lon: v.lon };
      if (v.org_id) body.org_id = Number(v.org_id);
      const p = await adminSend("/api/v1/places", "POST", body);
      form.remove();
      button.hidden = false;
      await searchPlaces();
      await loadPlace(p.id, true);
      placesSaid($("#ap-place"), `Place added: ${p.address}.`);
    },
  });
  form.append(adminButton("Cancel", () => { form.remove(); button.hidden = false; button.focus(); }));
  return addPicker(form);
}

// ---- one place --------------------------------------------------------------------------------
async function loadPlace(id, scroll = false) {
  const p = await api(`/api/v1/places/${id}`);
  const teams = await placeTeams(p.org_id);
  places.current = p.id;
  drawPlace(p, teams);
  if (scroll) $("#ap-place").scrollIntoView({ block: "start" });
}

// The teams a caution at a place of `orgId` may be limited to, asked once per organisation.
async function placeTeams(orgId) {
  if (!places.teams) places.teams = new Map();
  if (!places.teams.has(orgId)) places.teams.set(orgId, await cautionTeams(orgId));  // cautions.js
  return places.teams.get(orgId);
}

function drawPlace(p, teams) {
  const box = $("#ap-place");
  for (const form of box.querySelectorAll("form")) form.picker?.map?.remove();
  const head = el("h3", p.address);
  const about = el("p", `${state.me.org_id == null ? `${p.org} · ` : ""}Position: ${positionText(p)} · ${p.caution_count} caution${p.caution_count === 1 ? "" : "s"}`, "note");

  const edit = addPicker(adminForm({
    legend: "Change the place",
    fields: [{ name: "address", label: "Address", required: true, value: p.address, attrs: { maxlength: "300" } },
      ...positionFields(p)],
    submitLabel: "Save the place",
    className: "ap-edit",
    async submit(v) {
      const saved = await adminSend(`/api/v1/places/${p.id}`, "PATCH", { address: v.address, lat: v.lat, lon: v.lon });
      drawPlace(saved, teams);
      placesSaid($("#ap-place"), "Place saved.");
      searchPlaces();
    },
  }));

  const remove = el("div", null, "ap-delete");
  remove.append(adminButton("Delete this place…", () => confirmDelete(remove,
    `Delete ${p.address}${p.cautions.length ? ` and its ${p.cautions.length} caution${p.cautions.length > 1 ? "s" : ""}` : ""}? This cannot be undone.`,
    "Delete the place", async () => {
      await adminSend(`/api/v1/places/${p.id}`, "DELETE");
      places.current = null;
      box.replaceChildren();
      placesSaid(box, `Place deleted: ${p.address}.`);
      await Promise.all([searchPlaces(), loadReview()]);
    })));

  const rows = p.cautions.map((c) => {
    const acts = el("span", null, "ap-acts");
    acts.append(adminButton("Edit", () => editCaution(c, teams)),
      adminButton("Delete…", () => confirmDelete(acts, "Delete this caution?", "Delete", async () => {
        await adminSend(`/api/v1/cautions/${c.id}`, "DELETE");
        await Promise.all([loadPlace(p.id), loadReview(), searchPlaces()]);
        placesSaid($("#ap-place"), `Caution deleted: ${c.kind_label || word("caution_kind", c.kind)}.`);
      })));
    return [c.kind_label || word("caution_kind", c.kind), c.text, c.team ? `${c.team} only` : "Whole organisation",
      `${dayText(c.recorded_at)} by ${who(c.recorded_by)}`,
      c.review_on ? `${dayText(c.review_on)}${c.review_due ? " (due)" : ""}` : "", dayText(c.expires_on), acts];
  });
  const table = adminTable(["Kind", "What to know", "Seen by", "Recorded", "Review on", "Expires", ""], rows,
    "No cautions at this place.");
  table.querySelectorAll?.("tbody tr").forEach((tr, i) => {
    tr.dataset.caution = p.cautions[i].id;
    tr.classList.toggle("due", Boolean(p.cautions[i].review_due));
  });

  const add = adminForm({
    legend: "Add a caution",
    fields: cautionFields(teams),
    submitLabel: "Add the caution",
    className: "ap-caution-add",
    async submit(v) {
      const c = await adminSend(`/api/v1/places/${p.id}/cautions`, "POST", cautionBody(v));
      await Promise.all([loadPlace(p.id), loadReview(), searchPlaces()]);
      placesSaid($("#ap-place"), `Caution added: ${c.kind_label || word("caution_kind", c.kind)}.`);
    },
  });

  const parts = [head, about, edit, remove, el("h4", "Cautions"), table, el("div", null, "ap-caution-edit"), add];
  if (p.incidents?.length) {
    const ul = el("ul", null, "caution-incidents");
    ul.append(...p.incidents.map(incidentItem));  // cautions.js: links to Review
    parts.push(el("h4", "Incidents here"), ul);
  }
  box.replaceChildren(...parts);
  pickerShown(box);
}

// What was said of an earlier change goes once another is begun.
function placesUnsaid() { $("#ap-place > .ap-said")?.remove(); }

function editCaution(c, teams) {
  placesUnsaid();
  const slot = $("#ap-place .ap-caution-edit");
  const form = adminForm({
    legend: `Change the caution: ${c.kind_label || word("caution_kind", c.kind)}`,
    fields: cautionFields(teams, c),
    submitLabel: "Save the caution",
    className: "ap-caution-change",
    async submit(v) {
      await adminSend(`/api/v1/cautions/${c.id}`, "PATCH", cautionBody(v));
      await Promise.all([loadPlace(c.place_id), loadReview(), searchPlaces()]);
      placesSaid($("#ap-place"), "Caution saved.");
    },
  });
  form.append(adminButton("Cancel", () => form.remove()));
  slot.replaceChildren(form);
  form.elements.text.focus();
}

// A deletion asks first, in place: the question, the button that deletes, and one to keep it.
function confirmDelete(where, question, yes, action) {
  placesUnsaid();
  const was = [...where.childNodes];
  const ask = el("span", null, "ap-confirm");
  ask.setAttribute("role", "alert");
  const back = () => where.replaceChildren(...was);
  ask.append(el("strong", question), " ",
    adminButton(yes, async () => {
      try { await action(); } catch (err) { back(); placesSaid($("#ap-place"), err); }
    }, "danger"),
    adminButton("Keep it", back));
  where.replaceChildren(ask);
}
