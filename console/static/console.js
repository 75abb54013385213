// Vigil console: live alert queue over a websocket, actions over the REST API.
// Everything people typed is put on the page with textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("vigil.token"), alerts: new Map(),
  selected: null, seq: 0, epoch: null, ws: null, retry: 500 };

const LABEL = { red: "Panic", man_down: "Man down", no_motion: "No motion", test: "Test",
  visit_overdue: "Visit overdue", device_offline: "Device offline", duress: "Duress" };

function kindOf(a) { return a.duress ? "duress" : a.type; }

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}),
    Authorization: `Bearer ${state.token}` } });
  if (res.status === 401) { signOut(); throw new Error("Your session has expired"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : res.statusText);
  return body;
}

function show(view) {
  $("#login").hidden = view !== "login";
  $("#console").hidden = view !== "console";
  $("#logout").hidden = view !== "console";
}

function signOut() {
  sessionStorage.removeItem("vigil.token");
  state.token = null;
  if (state.ws) state.ws.close();
  show("login");
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const res = await fetch("/api/v1/auth/token", { method: "POST",
    body: new URLSearchParams(form) });
  if (!res.ok) { $("#login-error").textContent = "Wrong username or password."; return; }
  state.token = (await res.json()).access_token;
  sessionStorage.setItem("vigil.token", state.token);
  start();
});
$("#logout").addEventListener("click", signOut);

function since(iso) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  const m = Math.floor(s / 60);
  return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

function isActive(a) { return a.state === "raised" || a.state === "acknowledged"; }

function render() {
  const rows = [...state.alerts.values()].filter(isActive)
    .sort((a, b) => a.priority - b.priority || Date.parse(a.raised_at) - Date.parse(b.raised_at));
  const body = $("#queue tbody");
  body.replaceChildren(...rows.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.id = a.id;
    tr.tabIndex = 0;
    if (a.state === "raised") tr.classList.add("flash");
    if (state.selected === a.id) tr.classList.add("selected");
    const cells = [LABEL[kindOf(a)] || a.type, a.worker_name || a.device_id, a.team || "",
      new Date(a.raised_at).toLocaleTimeString(), since(a.raised_at),
      a.acknowledged_by ? a.acknowledged_by.replace(/^user:/, "") : ""];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 0) td.className = `type type-${kindOf(a)}`;
      if (i === 4) td.className = "age";
      tr.append(td);
    });
    tr.addEventListener("click", () => select(a.id));
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") select(a.id); });
    return tr;
  }));
  $("#count").textContent = rows.length;
  $("#empty").hidden = rows.length > 0;
}

async function select(id) {
  state.selected = id;
  render();
  const a = await api(`/api/v1/alerts/${id}`);
  state.alerts.set(a.id, { ...state.alerts.get(a.id), ...a });
  $("#detail").hidden = false;
  $("#d-title").textContent = `${LABEL[kindOf(a)] || a.type}: ${a.worker_name || a.device_id}`;
  const facts = [["State", a.state], ["Device", a.device_id], ["Team", a.team || ""],
    ["Raised", new Date(a.raised_at).toLocaleString()],
    ["Position", a.lat != null ? `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)} (±${a.acc ?? "?"} m)` : "unknown"],
    ["Battery", a.battery != null ? `${a.battery}%` : ""], ["Note", a.note || ""],
    ["Taken by", a.acknowledged_by || ""], ["Outcome", a.outcome || ""]];
  $("#d-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  $("#ack").disabled = a.state !== "raised";
  $("#timeline").replaceChildren(...a.timeline.map((t) => {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = new Date(t.at).toLocaleTimeString();
    li.append(time, `${t.text || t.kind} (${t.actor})`);
    return li;
  }));
}

async function act(fn) {
  $("#action-error").textContent = "";
  try { await fn(); await select(state.selected); } catch (err) {
    $("#action-error").textContent = err.message;
  }
}
$("#ack").addEventListener("click", () => act(() =>
  api(`/api/v1/alerts/${state.selected}/acknowledge`, { method: "POST" })));
$("#note-form").addEventListener("submit", (e) => { e.preventDefault(); act(async () => {
  await api(`/api/v1/alerts/${state.selected}/notes`, { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: $("#note").value }) });
  $("#note").value = "";
}); });
$("#resolve-form").addEventListener("submit", (e) => { e.preventDefault(); act(() =>
  api(`/api/v1/alerts/${state.selected}/resolve`, { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ outcome: $("#outcome").value }) })); });

function onMessage(msg) {
  if (msg.kind === "heartbeat" || msg.kind === "pong") return;
  if (msg.kind === "snapshot") {
    state.alerts = new Map(msg.alerts.map((a) => [a.id, a]));
  } else {
    if (msg.epoch === state.epoch && msg.seq <= state.seq) return;
    if (msg.alert) {
      const isNew = !state.alerts.has(msg.alert.id) && msg.kind === "alert.raised";
      state.alerts.set(msg.alert.id, msg.alert);
      if (isNew) $("#chime").play().catch(() => {});
      if (state.selected === msg.alert.id) select(msg.alert.id);
    }
  }
  state.seq = msg.seq; state.epoch = msg.epoch;
  render();
}

function connect() {
  const q = new URLSearchParams({ token: state.token });
  if (state.epoch) { q.set("epoch", state.epoch); q.set("since", state.seq); }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?${q}`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 500; $("#conn").textContent = "live"; $("#conn").className = "conn on"; };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => {
    $("#conn").textContent = "offline"; $("#conn").className = "conn off";
    if (e.code === 4401) { signOut(); return; }
    if (state.token) setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 5000);
  };
}

async function start() {
  try {
    const me = await api("/api/v1/auth/me");
    $("#who").textContent = `${me.full_name || me.username} (${me.role})`;
  } catch { return; }
  show("console");
  connect();
}

setInterval(() => document.querySelectorAll("#queue .age").forEach((td, i) => {
  const id = Number(td.parentElement.dataset.id);
  const a = state.alerts.get(id);
  if (a) td.textContent = since(a.raised_at);
}), 1000);

if (state.token) start(); else show("login");
