// Vigil console: the live alert queue over a websocket, actions over the REST API, the map,
// evidence, and the fleet view. Everything people typed goes on the page with textContent,
// never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("vigil.token"), me: null, alerts: new Map(),
  selected: null, seq: 0, epoch: null, ws: null, retry: 500, view: "alerts",
  config: null, meta: null, active: new Set(), fleetTimer: null };

// What the service knows and the console is told at sign-in (GET /api/v1/console/meta): the
// alert types and outcomes, the words for every stored value (`labels`, read by words.js's
// word()), the states and the changes each allows, the low-battery threshold, the
// supervising roles, escalation's timeline entries.
function learn(meta) {
  state.meta = meta;
  state.active = new Set(meta.active_states);
  // No outcome is chosen for the operator: resolving asks for one (resolve.js).
  $("#outcome").replaceChildren(new Option("Choose an outcome…", ""),
    ...meta.outcomes.map((o) => new Option(o.label, o.value)));
}

function kindOf(a) { return a.duress ? "duress" : a.type; }
function isActive(a) { return state.active.has(a.state); }
// Whether the state machine lets the alert become `wanted` ("acknowledged", "resolved").
function canBecome(a, wanted) { return Boolean(state.meta?.transitions[a.state]?.includes(wanted)); }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function api(path, opts = {}) {
  // The network failing says nothing of whether the service got the request: say so, not
  // "Failed to fetch".
  const res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}),
    Authorization: `Bearer ${state.token}` } }).catch(() => {
    throw new Error("Could not reach the service: this may not have been done. Look again once the console is connected.");
  });
  if (res.status === 401) { signOut("Your session has expired: please sign in again."); throw new Error("signed out"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.detail ? problemText(body.detail) : res.statusText);
  return body;
}

// A refusal in words: the service's own sentence, or each field FastAPI's validation named
// ("phone: String should have at most 32 characters") rather than its JSON.
function problemText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

function show(view) {
  $("#login").hidden = view !== "login";
  $("#console").hidden = view !== "alerts";
  $("#fleet").hidden = view !== "fleet";
  $("#fleetmap").hidden = view !== "map";
  $("#review").hidden = view !== "review";
  $("#admin").hidden = view !== "admin";
  $("#logout").hidden = view === "login";
  $("#tabs").hidden = view === "login";
  for (const [id, v] of [["#tab-alerts", "alerts"], ["#tab-map", "map"], ["#tab-fleet", "fleet"], ["#tab-review", "review"], ["#tab-admin", "admin"]]) {
    $(id).classList.toggle("active", view === v);
    $(id).setAttribute("aria-pressed", String(view === v));
  }
  if (view !== "login") state.view = view;
  clearInterval(state.fleetTimer);
  if (view === "fleet") { loadFleet(); state.fleetTimer = setInterval(loadFleet, 5000); }
  fleetMapShown(view === "map");  // fleetmap.js
  if (view === "alerts") { resizeMaps(); refreshSoon(); }  // what changed while hidden
  if (view === "review") openReview();  // review.js
  if (view === "admin") openAdmin();  // admin.js
}

function signOut(note) {
  sessionStorage.removeItem("vigil.token");
  state.token = null;
  if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
  connectionEnded();  // connection.js: no banner about a link nobody wants any more
  $("#login-note").textContent = note || "";
  show("login");
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const res = await fetch("/api/v1/auth/token", { method: "POST",
    body: new URLSearchParams(new FormData(e.target)) });
  if (!res.ok) { $("#login-error").textContent = "Wrong username or password."; return; }
  state.token = (await res.json()).access_token;
  sessionStorage.setItem("vigil.token", state.token);
  $("#login-error").textContent = "";
  start();
});
$("#logout").addEventListener("click", () => signOut());
$("#tab-alerts").addEventListener("click", () => show("alerts"));
$("#tab-fleet").addEventListener("click", () => show("fleet"));
$("#tab-map").addEventListener("click", () => show("map"));

// How long ago (`since`), and the page's one timer (`everySecond`): times.js.

// ---- the queue -----------------------------------------------------------------------
// With hundreds of rows on screen and dozens of updates a second, the page must stay idle
// between them: a message marks only its own row dirty, rows are re-sorted only when the set
// of rows or an ordering key changed, and many messages within one frame make one redraw.
const rowsById = new Map();
const dirty = new Set();
let reorder = true;
let renderPending = false;

function render(id) {
  if (id === undefined) reorder = true; else dirty.add(id);
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; drawQueue(); });
}

function fillRow(tr, a) {
  // Parsed and formatted once per change of raised_at, not on every redraw or tick.
  if (tr.raisedAt !== a.raised_at) {
    tr.raisedAt = a.raised_at;
    tr.raisedMs = Date.parse(a.raised_at);
    tr.cells[3].textContent = clock(tr.raisedMs);
  }
  // The age (cell 4) is the ticker's, below, once a row is drawn: written here too, every
  // row's would change at its own second and each write cost a layout of the whole table.
  const cells = [word("type", kindOf(a)), a.worker_name || a.device_id, a.team || "",
    null, null, who(a.acknowledged_by)];
  cells.forEach((text, i) => {
    // Only what changed is touched: a write, even of the same text, costs a layout.
    if (text !== null && tr.cells[i].textContent !== text) tr.cells[i].textContent = text;
  });
  const cls = `type type-${kindOf(a)}`;
  if (tr.cells[0].className !== cls) tr.cells[0].className = cls;
  markRow(tr, a);  // its kind's colour, flashing, lateness (urgency.js)
  tr.classList.toggle("selected", state.selected === a.id);
}

// Its age, and, for an alert nobody has taken, how late it is against the targets (urgency.js).
// It may wrap (console.css): beside an open alert the queue is narrow, and an hour's age
// with its lateness on one line widened it past the pane.
function ageOf(tr) { return since(tr.raisedMs) + lateness(tr); }

function newRow(a) {
  const tr = el("tr");
  tr.dataset.id = a.id;
  if (a.device_alert_id) tr.dataset.deviceAlert = a.device_alert_id;
  tr.tabIndex = 0;
  for (let i = 0; i < 6; i++) tr.append(el("td", "", i === 4 ? "age" : undefined));
  return tr;
}

function drawQueue() {
  const body = $("#queue tbody");
  if (reorder) {
    reorder = false;
    const focus = focusInQueue();  // navigation.js: moving or removing a row loses its focus
    const rows = [];
    for (const a of state.alerts.values()) {
      if (isActive(a)) rows.push([a.priority, Date.parse(a.raised_at), a]);
    }
    rows.sort((x, y) => queueOrder(x[2], y[2]));  // order.js: untaken first, priority, oldest
    const keep = new Set(rows.map(([, , a]) => a.id));
    for (const [id, tr] of rowsById) if (!keep.has(id)) { tr.remove(); rowsById.delete(id); }
    let prev = null;
    // One row per worker leads, the worker's other open alerts under it (urgency.js).
    for (const [a, lead, n] of grouped(rows.map(([, , a]) => a))) {
      let tr = rowsById.get(a.id);
      if (!tr) {
        tr = newRow(a);
        rowsById.set(a.id, tr);
        fillRow(tr, a);
        tr.cells[4].textContent = ageOf(tr);
      }
      placeRow(tr, a, lead, n);
      const want = prev ? prev.nextSibling : body.firstChild;
      if (tr !== want) body.insertBefore(tr, want);
      prev = tr;
    }
    $("#count").textContent = rows.length;
    $("#empty").hidden = rows.length > 0;
    alarm();  // a new alert sounds now, not at the next second (urgency.js)
    focus.restore();
  }
  for (const id of dirty) {
    const tr = rowsById.get(id);
    const a = state.alerts.get(id);
    if (tr && a) fillRow(tr, a);
  }
  dirty.clear();
  openSelectedGroup();
}

// What a row shows: a change to anything else (a note, a position, the battery) draws nothing,
// not even a frame, which would cost milliseconds with the whole queue on the page.
const SHOWN = ["type", "duress", "worker_name", "device_id", "team", "raised_at",
  "acknowledged_by", "state", "priority"];
function showsChange(old, a) { return !old || SHOWN.some((k) => old[k] !== a[k]); }

// Whether a change to an alert can move, add or remove its row (else only the row is redrawn).
function movesRow(old, a) {
  return !old || old.priority !== a.priority || old.raised_at !== a.raised_at
    || isActive(old) !== isActive(a)
    || old.state !== a.state;  // within a worker's group, what nobody has taken leads
}

// Raised rows flash, all in step, by one class on the table's body twice a second: a CSS
// animation on each row would restyle every row on every frame, hundreds of them.
setInterval(() => $("#queue tbody").classList.toggle("blink"), 500);

// One listener for the whole queue, rather than two per row.
$("#queue tbody").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr) openAlert(Number(tr.dataset.id));  // navigation.js
});
$("#queue tbody").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); openAlert(Number(tr.dataset.id)); }
});

// ---- one alert -----------------------------------------------------------------------
// The map and the position's lines: fleetmap.js (drawPositions).

// Each play or download of evidence is logged by the service (chain of custody), so a clip is
// fetched only when the operator asks for it, and kept for the page's life.
const clips = new Map();
async function fetchClip(ev) {
  if (!clips.has(ev.id)) {
    const res = await fetch(`/api/v1/evidence/${ev.id}/audio`, { headers: { Authorization: `Bearer ${state.token}` } });
    if (!res.ok) throw new Error(`could not load ${ev.evidence_id}`);
    clips.set(ev.id, URL.createObjectURL(await res.blob()));
  }
  return clips.get(ev.id);
}

// Drawn again at every change of the alert (a position every few seconds): a line is kept
// per clip, by its evidence id, and only what changed in it is touched, so the recording the
// operator is listening to plays on. Another alert starts afresh.
function drawEvidence(a) {
  const box = $("#d-evidence");
  if (box.alertId !== a.id) { box.alertId = a.id; box.lines = new Map(); box.replaceChildren(); }
  const list = a.evidence || [];
  const keep = new Set(list.map((ev) => ev.id));
  for (const [id, line] of box.lines) if (!keep.has(id)) { line.remove(); box.lines.delete(id); }
  if (!list.length) { box.replaceChildren(); return; }
  if (!box.firstElementChild || box.firstElementChild.tagName !== "H3") box.prepend(el("h3", "Audio"));
  let prev = box.firstElementChild;
  for (const ev of list) {
    let line = box.lines.get(ev.id);
    if (!line) { line = el("div"); line.dataset.evidence = ev.id; line.append(el("span")); box.lines.set(ev.id, line); }
    evidenceLine(line, ev);
    // Moved only when out of place: a playing <audio> taken out of the page stops.
    if (prev.nextSibling !== line) prev.after(line);
    prev = line;
  }
}

function evidenceLine(line, ev) {
  const text = `${ev.evidence_id} · ${ev.duration_ms ? (ev.duration_ms / 1000).toFixed(0) + " s" : ""} · sha256 ${(ev.sha256 || "").slice(0, 12)}…`;
  if (line.firstChild.textContent !== text) line.firstChild.textContent = text;
  const how = ev.uploaded_at ? "audio" : ev.uri ? `uri ${ev.uri}` : "none";
  if (line.how === how) return;  // its player (or what it says instead) stays as it is
  line.how = how;
  while (line.childNodes.length > 1) line.lastChild.remove();
  if (ev.uploaded_at) {
    const audio = el("audio");
    audio.controls = true;
    audio.dataset.evidence = ev.id;
    if (clips.has(ev.id)) {
      audio.src = clips.get(ev.id);
    } else {
      const load = el("button", "Listen");
      load.addEventListener("click", async () => {
        try {
          audio.src = await fetchClip(ev);
          load.remove();
          audio.play().catch(() => {});
        } catch (err) { $("#action-error").textContent = err.message; }
      });
      line.append(load);
    }
    line.append(audio);
  } else if (ev.uri) {
    line.append(el("span", ` (kept on the device: ${ev.uri})`, "note"));
  } else {
    line.append(el("span", " (not uploaded yet)", "note"));
  }
}

// Links in SMS and webhooks point at #alert=<id>: open that alert, as a click on its row
// would (on a phone its title gets the focus), whatever tab is showing. Once handled the
// hash is cleared, so the same link opened again is a change the page hears.
async function openLinked() {
  const m = location.hash.match(/^#alert=(\d+)$/);
  if (!m || !state.token) return;
  const id = Number(m[1]);
  history.replaceState(null, "", location.pathname + location.search);
  show("alerts");
  linkNote("");
  if (!(await openAlert(id))) linkNote(`Alert ${id} was not found, or is not yours to see.`);  // navigation.js
}
window.addEventListener("hashchange", openLinked);

// What a link could not open, said above the queue (and in the alert, if one is open).
function linkNote(text) {
  let note = $("#link-error");
  if (!note && !text) return;
  if (!note) {
    note = el("p", "", "error");
    note.id = "link-error";
    note.setAttribute("role", "alert");
    $("#queue-pane h2").after(note);
  }
  note.textContent = text;
  note.hidden = !text;
  if (text) $("#action-error").textContent = text;
}

// A fact's value; the Visit's has the visit's timeline under it (its start, deadlines, end,
// and the places the worker's phone reported arriving at or leaving), as text, never markup.
function factOf(key, text, a) {
  // A value is text, or the nodes it is made of (a live time among them: times.js).
  const dd = el("dd", typeof text === "string" ? text : undefined);
  if (typeof text !== "string") dd.append(...text);
  if (key !== "Visit" || !a.visit?.events?.length) return dd;
  const ul = el("ul", undefined, "visit-events");
  ul.append(...a.visit.events.map((e) => {
    const li = el("li", "", e.kind === "place" ? "place" : "");
    li.append(el("time", clock(e.at)), ` ${e.text}`);
    return li;
  }));
  dd.append(ul);
  return dd;
}

// Opening an alert (navigation.js's openAlert, a row, the map) and refreshing the one open
// are two things: opening fetches it whole and shows the pane; a refresh (below) draws what
// changed in the pane as it is, open or not, and never opens it. `nav.gen` counts openings
// and closings (Back, a resolve), so an answer that arrives after the pane was closed does
// not open it again. Returns whether the alert could be shown.
const nav = { gen: 0 };
const PARTS = ["escalation", "calls", "procedure"];

async function select(id) {
  const gen = ++nav.gen;
  const before = state.selected;
  if (before !== null) render(before);
  state.selected = id;
  render(id);
  refreshing.parts.clear();  // what was due for the alert before is fetched now
  const a = await fetchAlert(id);
  if (!a) {
    // Missing, or not this operator's: the selection stays what it was.
    if (state.selected === id && gen === nav.gen) { state.selected = before; render(id); if (before !== null) render(before); }
    return false;
  }
  if (state.selected !== id || gen !== nav.gen) return false;
  $("#detail").hidden = false;
  $("#console").classList.add("detail-open");  // on a narrow screen, the detail in its place
  drawAlert(a, PARTS);
  drawCautions(a);  // cautions.js: once per opening, never on a refresh (the read is recorded)
  return true;
}

// The alert as the service has it now, merged into the queue's copy; null if refused.
async function fetchAlert(id) {
  let a;
  try { a = await api(`/api/v1/alerts/${id}`); } catch { return null; }
  const old = state.alerts.get(a.id);
  const merged = { ...old, ...a };
  state.alerts.set(a.id, merged);
  render(a.id);
  if (movesRow(old, merged)) render();
  return a;
}

// Close the pane (Back, after a resolve): nothing under way may open it again.
function closeAlert() {
  nav.gen++;
  $("#console").classList.remove("detail-open");
}

// ---- refreshing the open alert ---------------------------------------------------------
// A message about the open alert marks what it may have changed: the alert itself always,
// and its escalation plan, calls or procedure only when the message's kind can change them
// (a position, every few seconds while the alert is active, changes none of them). What is
// marked is fetched at most once per REFRESH_MS, one request for each part, and only while
// the pane is on screen: hidden (another tab, back in the queue on a phone) it waits until
// it shows again.
const REFRESH_MS = 250;
const refreshing = { parts: new Set(), timer: null, last: 0, running: false };
const PARTS_OF = {
  "alert.position": [],
  "alert.note": [],
  "alert.authorities": [],
  "alert.evidence": ["calls"],  // a call's recording is kept as evidence
  "alert.escalation": ["escalation", "calls"],
  // A procedure's tick, a hold, a silence, a wrong cancel PIN: none moves the escalation
  // or the calls.
  "alert.updated": ["procedure"],
};

function paneShown() {
  return state.view === "alerts" && !$("#detail").hidden && $("#detail").getClientRects().length > 0;
}

function alertTouched(msg, old) {
  let parts = PARTS_OF[msg.kind] || PARTS;  // raised, taken, duress, resolved…: everything
  const a = msg.alert;
  if (a && old && (old.state !== a.state || old.duress !== a.duress || old.acknowledged_by !== a.acknowledged_by)) parts = PARTS;
  refreshing.parts.add("alert");
  for (const p of parts) refreshing.parts.add(p);
  refreshSoon();
}

function refreshSoon() {
  if (refreshing.timer || refreshing.running || !refreshing.parts.size || state.selected === null || !paneShown()) return;
  const wait = Math.max(0, refreshing.last + REFRESH_MS - Date.now());
  refreshing.timer = setTimeout(async () => {
    refreshing.timer = null;
    if (!refreshing.parts.size || state.selected === null || !paneShown()) return;
    const parts = refreshing.parts;
    refreshing.parts = new Set();
    refreshing.running = true;
    refreshing.last = Date.now();
    try { await refresh(state.selected, [...parts]); } finally { refreshing.running = false; refreshSoon(); }
  }, wait);
}

// Fetch the alert on screen again and draw what changed, leaving the pane open or closed.
async function refresh(id, parts = PARTS) {
  const a = await fetchAlert(id);
  if (!a || state.selected !== id) return;
  drawAlert(a, parts);
}

// The pane's contents for `a`; `parts` says which of the other answers to fetch again.
function drawAlert(a, parts) {
  $("#d-title").textContent = `${word("type", kindOf(a))}: ${a.worker_name || a.device_id}`;
  const w = a.worker || {};
  const facts = [["State", word("state", a.state)], ["Worker", w.name || ""], ["Phone", w.phone || ""],
    ["Team", a.team || ""], ["For responders", w.responder_notes || ""],
    ["Device", `${a.device_id}${a.battery != null ? ` (battery ${a.battery}%)` : ""}`],
    ["Raised", [`${clock(a.raised_at, true)} (`, ago(a.raised_at), ")"]],
    ["Position", positionFact(a)],  // fleetmap.js
    ["Visit", a.visit ? `${a.visit.note || "(no note)"}, due ${clock(a.visit.due_at)}` : ""],
    ["Worker's note", a.note || ""], ["Taken by", who(a.acknowledged_by)],
    ["Outcome", word("outcome", a.outcome)]];
  // The phone, made a link by calls.js, stays one when only the facts are drawn again (a
  // position): the calls are not fetched again for that.
  const tel = a.duress ? null : $("#d-facts a.tel");
  $("#d-facts").replaceChildren(...facts.filter(([, v]) => v !== "").flatMap(([k, v]) => [el("dt", k), factOf(k, v, a)]));
  const phone = [...$("#d-facts").querySelectorAll("dt")].find((dt) => dt.textContent === "Phone")?.nextElementSibling;
  if (tel && phone && phone.textContent === tel.textContent) phone.replaceChildren(tel);
  drawSummary(a);  // summary.js: the DURESS banner and the line under the title
  $("#ack").disabled = !canBecome(a, "acknowledged");
  drawSilence(a);  // urgency.js
  $("#resolve-open").disabled = !canBecome(a, "resolved");
  // The timeline only grows: drawn again only when it has.
  const said = `${a.id}/${a.timeline.length}/${a.timeline.at(-1)?.at}`;
  if ($("#timeline").said !== said) {
    $("#timeline").said = said;
    $("#timeline").replaceChildren(...a.timeline.map((t) => {
      // Escalation's entries (steps, notifications, key presses, SMS replies) stand apart.
      const esc = state.meta.escalation_kinds.includes(t.kind);
      const li = el("li", "", esc ? "esc" : "");
      li.append(el("time", clock(t.at)));
      if (t.data?.status) li.append(el("span", word("status", t.data.status), `status ${t.data.status}`));
      li.append(esc ? t.text || word("entry", t.kind) : `${t.text || word("entry", t.kind)} (${who(t.actor)})`);
      if (t.data?.body) li.append(el("q", t.data.body));  // what an outbox message said
      return li;
    }));
  }
  drawPositions("alert", a);  // fleetmap.js
  drawEvidence(a);
  if (parts.includes("escalation")) drawEscalation(a);  // escalation.js
  if (parts.includes("calls")) drawCalls(a);  // calls.js
  if (parts.includes("procedure")) drawProcedure(a);  // procedures.js
}

async function act(fn) {
  $("#action-error").textContent = "";
  try { await fn(); await refresh(state.selected); return true; } catch (err) {
    if (err.message !== "signed out") $("#action-error").textContent = err.message;
    return false;
  }
}
const post = (path, body) => api(path, { method: "POST",
  headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
// Once in charge, the next thing to do is to write what is being done: focus goes there.
$("#ack").addEventListener("click", () => act(() => post(`/api/v1/alerts/${state.selected}/acknowledge`))
  .then((done) => { if (done) $("#note").focus(); }));
$("#note-form").addEventListener("submit", (e) => { e.preventDefault(); act(async () => {
  await post(`/api/v1/alerts/${state.selected}/notes`, { text: $("#note").value });
  $("#note").value = "";
}); });
$("#authorities-form").addEventListener("submit", (e) => { e.preventDefault(); act(async () => {
  await post(`/api/v1/alerts/${state.selected}/authorities`, { service: $("#auth-service").value, reference: $("#auth-ref").value });
  $("#auth-service").value = ""; $("#auth-ref").value = "";
}); });
// Resolving: resolve.js.

// ---- the fleet -----------------------------------------------------------------------
async function loadFleet() {
  let devices, refused;
  try {
    [devices, refused] = await Promise.all([api("/api/v1/devices"), api("/api/v1/refused?limit=50")]);
  } catch { return; }
  const online = devices.filter((d) => d.online).length;
  $("#fleet-summary").textContent = `${online} of ${devices.length} online`;
  $("#devices tbody").replaceChildren(...devices.map((d) => {
    const tr = el("tr");
    const left = d.visit_due_at ? Math.round((Date.parse(d.visit_due_at) - Date.now()) / 60000) : null;
    const cells = [
      [d.id], [d.worker_name || ""], [d.online ? "online" : "offline", d.online ? "online" : "offline"],
      [d.battery != null ? `${d.battery}%` : "", d.battery != null && d.battery < state.meta.low_battery_pct ? "low" : ""],
      [d.last_seen_at ? ago(d.last_seen_at) : "never"], [d.visit_note || ""],
      [left === null ? "" : left >= 0 ? `${left} min` : `${-left} min over`, left !== null && left < 0 ? "offline" : ""]];
    for (const [text, cls] of cells) {
      const td = el("td", typeof text === "string" ? text : undefined, cls);
      if (typeof text !== "string") td.append(text);  // a live time (times.js)
      tr.append(td);
    }
    return tr;
  }));
  $("#refused tbody").replaceChildren(...refused.map((r) => {
    const tr = el("tr");
    // A device refused in a loop is one row a second, with how many it stands for.
    const reason = r.repeats > 1 ? `${r.reason} (×${r.repeats.toLocaleString()})` : r.reason;
    for (const text of [clock(r.at, true), r.device_id || "", r.topic, reason]) tr.append(el("td", text));
    return tr;
  }));
}

// ---- the service's own state ---------------------------------------------------------
// While the service cannot store alerts (its database is down, its disk full) or cannot hear
// devices (its broker link is down), every operator must see it: the hub says so when it
// changes, and while the websocket cannot connect the console asks /readyz.
function showService(ready, detail) {
  const banner = $("#service-banner");
  banner.hidden = ready;
  banner.textContent = ready ? "" : detail;
}

async function checkService() {
  try {
    const res = await fetch("/readyz");
    const body = await res.json();
    showService(res.ok, body.detail);
  } catch { /* not answering at all: the connection indicator already says offline */ }
}

// ---- live updates --------------------------------------------------------------------
function onMessage(msg) {
  if (msg.kind === "heartbeat" || msg.kind === "pong") return;
  // The hub sends the service's state right after what a (re)connecting console missed.
  if (msg.kind === "service") { showService(msg.ready, msg.detail); caughtUp(); return; }
  if (msg.kind === "snapshot") {
    state.snapshots = (state.snapshots || 0) + 1;
    state.alerts = new Map(msg.alerts.map((a) => [a.id, a]));
    for (const id of state.alerts.keys()) render(id);
    render();
  } else {
    if (msg.epoch === state.epoch && msg.seq <= state.seq) return;
    let old;
    if (msg.alert) {
      old = state.alerts.get(msg.alert.id);
      const a = { ...old, ...msg.alert };
      state.alerts.set(a.id, a);
      if (showsChange(old, a)) render(a.id);
      if (movesRow(old, a)) render();
    }
    fleetMapAlertChanged();  // fleetmap.js
    const touched = msg.alert ? [msg.alert.id] : (msg.alert_ids || (msg.alert_id ? [msg.alert_id] : []));
    // Marked, and fetched within REFRESH_MS if the pane is on screen: never opened from here.
    if (touched.includes(state.selected)) alertTouched(msg, old);
  }
  state.seq = msg.seq; state.epoch = msg.epoch;
}

function connect() {
  // The token goes in the first message, never in the URL: URLs are written to access logs.
  const q = new URLSearchParams();
  if (state.epoch) { q.set("epoch", state.epoch); q.set("since", state.seq); }
  const query = q.toString();
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${query ? "?" + query : ""}`);
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ token: state.token }));
    state.retry = 500; $("#conn").textContent = "live"; $("#conn").className = "conn on";
    connectionOpened(ws);  // connection.js
  };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    $("#conn").textContent = "offline"; $("#conn").className = "conn off";
    checkService();
    if (e.code === 4401) { signOut("Your session has expired: please sign in again."); return; }
    connectionLost();  // connection.js
    if (state.token) setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 5000);
  };
}

async function start() {
  try {
    state.me = await api("/api/v1/auth/me");
    [state.config] = await Promise.all([api("/api/v1/console/config"),
      api("/api/v1/console/meta").then(learn)]);
  } catch { return; }
  $("#who").textContent = `${state.me.full_name || state.me.username} (${word("role", state.me.role)})`;
  $("#tab-fleet").hidden = !state.meta.supervising_roles.includes(state.me.role);
  $("#tab-review").hidden = $("#tab-fleet").hidden;
  $("#tab-admin").hidden = !adminSectionsFor(state.me.role).length;  // admin.js
  show("alerts");
  offerNotifications();  // urgency.js: a button, never a request on load
  connect();
  openLinked();
}

everySecond(() => {
  if (state.stale) return;  // while not connected the ages stop: they may be out of date
  for (const tr of rowsById.values()) {
    const text = ageOf(tr);
    // The text node's data, not the cell's textContent: a new node would be styled anew,
    // five hundred of them a second.
    const node = tr.cells[4].firstChild;
    if (!node) tr.cells[4].textContent = text; else if (node.data !== text) node.data = text;
  }
});

// Once every script of the page has run: the other files' hooks (connection.js, resolve.js…)
// must exist before the first answer from the service can call them.
document.addEventListener("DOMContentLoaded", () => { if (state.token) start(); else show("login"); });
