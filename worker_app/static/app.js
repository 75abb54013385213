// Vigil worker app: a phone as a panic alarm. This module starts the app: enrolment from a
// one-time link, the connection, which screen shows, settings, permissions and Web Push.
// The protocol is docs/protocol.md; the other modules hold the alert, the visit, the
// positions, the recordings and the MQTT link with its outbox.
import { $, app, battery, deviceFetch, hooks, setupPinPad, text } from "./ui.js";
import { freeze, load, save, settings } from "./store.js";
import { Link } from "./link.js";
import { Uploader } from "./clips.js";
import * as alert from "./alert.js";
import * as visit from "./visit.js";
import { locate, update as updatePositions } from "./positions.js";

const SCREENS = ["elsewhere", "setup", "enrolling", "home", "alert", "pin", "ended", "visit-form", "visit", "due", "settings"];

const CONN = {
  connecting: ["Connecting…", ""],
  online: ["Connected", ""],
  offline: ["No connection",
    "No connection. What you do is kept on this phone and sent as soon as the connection returns."],
  refused: ["Cannot connect",
    "This phone cannot connect: its panic alarm has been switched off or moved to another phone. Ask your administrator for a new enrolment link."],
  stopped: ["Not connected", ""],
};

let welcome = "";
let elsewhere = false;
let enrolCode = null;
let enrolBusy = false;

function screen() {
  if (elsewhere) return "elsewhere";
  if (!app.creds) return enrolCode ? "enrolling" : "setup";
  if (app.overlay) return app.overlay;
  if (app.alert) return "alert";
  if (app.ended) return "ended";
  if (visit.isDue()) return "due";
  if (app.visit) return "visit";
  return "home";
}

let shown = null;

hooks.render = () => {
  const now = screen();
  for (const s of SCREENS) $(`#${s}`).hidden = s !== now;
  // Another screen starts at its top (its title, what to do), not where the last one was left.
  if (now !== shown) window.scrollTo(0, 0);
  shown = now;
  text("#who", app.creds?.worker_name || "");
  $("#open-settings").hidden = !app.creds || now === "settings";
  $("#welcome").hidden = !welcome;
  text("#welcome", welcome);
  $("#visit-new").hidden = Boolean(app.visit);
  text("#ended-title", app.ended?.title);
  text("#ended-detail", app.ended?.detail);
  text("#hold-s", String(Math.round(settings().hold_ms / 100) / 10));
  alert.draw();
  visit.draw();
};

function showConn(state, detail) {
  const [label, long] = CONN[state] || [state, ""];
  const pill = $("#conn");
  pill.className = `conn ${state}`;
  text("#conn", label);
  const extra = detail || long;
  $("#conn-detail").hidden = !extra || !app.creds;
  text("#conn-detail", extra);
}

// ---- enrolment: `#enrol=<code>` exchanged once for this phone's credentials ----

function takeCode() {
  const m = /(?:^#|&)enrol=([^&]+)/.exec(location.hash);
  if (!m) return null;
  // Out of the address bar (and the history) at once: the link works once anyway.
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(m[1]);
}

async function enrol() {
  if (enrolBusy || !enrolCode) return;
  enrolBusy = true;
  const previous = app.creds;
  app.creds = null;
  text("#enrol-title", "Setting up this phone…");
  text("#enrol-detail", "");
  $("#enrol-retry").hidden = true;
  hooks.render();
  let res = null;
  try {
    res = await fetch("/api/v1/app/enrol", {
      method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: enrolCode }),
    });
  } catch {
    res = null;
  }
  enrolBusy = false;
  if (res && res.ok) {
    const c = await res.json();
    enrolCode = null;
    app.link?.stop();
    app.link = null;
    app.creds = { device_id: c.device_id, secret: c.secret, mqtt_url: c.mqtt_url || "",
      worker_name: c.worker_name || "", heartbeat_s: c.heartbeat_s || 300, centre_phone: c.centre_phone || "" };
    save("creds", app.creds);
    welcome = `This phone is now your panic alarm, ${app.creds.worker_name}.`;
    connectHere();
    showPermissions();
    hooks.render();
    return;
  }
  app.creds = previous;
  if (res && [400, 404, 410, 422].includes(res.status)) {
    enrolCode = previous ? null : enrolCode;
    text("#enrol-title", "This enrolment link cannot be used");
    text("#enrol-detail", "It has already been used, or it has expired. Ask your administrator for a new link."
      + (previous ? " This phone keeps its current set-up." : ""));
    welcome = previous ? "That enrolment link could not be used: it was already used or has expired. This phone keeps its current set-up." : "";
  } else {
    text("#enrol-title", "This phone could not be set up yet");
    text("#enrol-detail", "Vigil could not be reached. Check that the phone has a connection, then try again.");
    $("#enrol-retry").hidden = false;
  }
  hooks.render();
}

// ---- the connection ----

// One window of the app speaks for the phone at a time: two would take the broker's session
// (one client id) from each other in turn. The window opened last wins; an earlier one stops,
// writes nothing more, and says so.
function connectHere() {
  if (!navigator.locks) { connect(); return; }
  navigator.locks.request("vigil-app-link", { steal: true }, () => {
    connect();
    return new Promise(() => {});  // held for as long as this page lives
  }).catch(() => {
    elsewhere = true;
    freeze();
    app.link?.stop();
    if (app.uploader) app.uploader.stopped = true;
    showConn("stopped");
    hooks.render();
  });
}

let heartbeat = null;

function connect() {
  if (!app.creds || app.link) return;
  app.link = new Link(app.creds, {
    onState: (state, detail) => {
      showConn(state, detail);
      if (state === "online") { beat(); app.uploader?.run(); }
    },
    onCommand,
  });
  app.uploader = new Uploader(app.creds, app.link, () => {});
  app.link.start();
  clearInterval(heartbeat);
  heartbeat = setInterval(beat, Math.max(10, app.creds.heartbeat_s * 0.8) * 1000);
  app.uploader.run();
}

// A heartbeat needs the battery level; a browser without the Battery API sends none (its
// retained `online` status and its other messages are all the service hears from it).
function beat() {
  const b = battery();
  if (b === null || app.link?.state !== "online") return;
  app.link.send("heartbeat", { v: 1, ts: Date.now(), batt: b, chg: Boolean(app.battery.charging) }, { qos: 0 });
}

function onCommand(m) {
  if (m.v !== 1 || typeof m.type !== "string") return;
  if (m.type === "locate") { locate(); return; }
  if (m.type.startsWith("visit_")) { visit.onCommand(m); return; }
  if (m.type === "rejected") {
    console.warn("Vigil refused a message:", m.ref, m.reason);
    // A cancel refused (too many at once, say) is a cancel not accepted: the PIN can be keyed
    // again. The same for every PIN, so nothing here tells a duress PIN apart.
    if (m.ref === "alert/cancel" && m.id) alert.onCommand({ type: "cancel_rejected", alert_id: m.id });
    return;
  }
  alert.onCommand(m);
}

// ---- permissions and Web Push ----

async function granted(name) {
  try { return (await navigator.permissions.query({ name })).state; } catch { return "unknown"; }
}

// Asked for once, from a tap: a prompt in the middle of a panic would cost seconds.
async function showPermissions() {
  const [geo, mic] = await Promise.all([granted("geolocation"), granted("microphone")]);
  $("#permissions").hidden = geo === "granted" && (mic === "granted" || (mic === "unknown" && load("asked")));
}

async function askPermissions() {
  save("asked", true);
  const said = [];
  await new Promise((resolve) => {
    if (!navigator.geolocation) { said.push("Location: not available on this phone."); resolve(); return; }
    navigator.geolocation.getCurrentPosition(() => { said.push("Location: allowed."); resolve(); },
      () => { said.push("Location: NOT allowed. Allow it in the browser's settings."); resolve(); },
      { enableHighAccuracy: true, timeout: 20000 });
  });
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: true });
    s.getTracks().forEach((t) => t.stop());
    said.push("Microphone: allowed.");
  } catch {
    said.push("Microphone: NOT allowed. Allow it in the browser's settings.");
  }
  try { if (window.Notification && Notification.permission === "default") await Notification.requestPermission(); } catch { /* none */ }
  text("#allow-result", said.join(" "));
  setupPush();
}

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// Visit reminders and "help is on the way" as notifications, where the phone allows them.
async function setupPush() {
  try {
    if (!app.creds || !("PushManager" in window) || !navigator.serviceWorker) return;
    const cfg = await (await fetch("/app/config.json", { cache: "no-store" })).json();
    if (cfg?.centre_phone && cfg.centre_phone !== app.creds.centre_phone) {
      app.creds.centre_phone = cfg.centre_phone;
      save("creds", app.creds);
    }
    const key = cfg?.vapid_public_key;
    if (!key || window.Notification?.permission !== "granted") return;
    const reg = await navigator.serviceWorker.ready;
    const sub = (await reg.pushManager.getSubscription())
      || (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }));
    await deviceFetch(app.creds, "push", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(sub.toJSON()),
    });
  } catch (err) {
    console.debug("Web Push not set up:", err);
  }
}

// ---- settings ----

function openSettings() {
  $("#set-fallback").value = String(settings().fallback_s);
  text("#centre-phone", app.creds?.centre_phone || "not given");
  app.overlay = "settings";
  hooks.render();
}

function saveSettings(e) {
  e.preventDefault();
  const n = Number($("#set-fallback").value);
  const kept = load("settings", {}) || {};
  if (Number.isFinite(n) && n >= 5 && n <= 120) kept.fallback_s = Math.round(n);
  save("settings", kept);
  app.overlay = null;
  hooks.render();
}

// ---- start ----

function start() {
  setupPinPad();
  alert.setup();
  visit.setup();
  $("#ended-ok").addEventListener("click", () => { app.ended = null; welcome = ""; hooks.render(); });
  $("#enrol-retry").addEventListener("click", enrol);
  $("#use-here").addEventListener("click", () => location.reload());
  $("#allow").addEventListener("click", askPermissions);
  $("#open-settings").addEventListener("click", openSettings);
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#settings-back").addEventListener("click", () => { app.overlay = null; hooks.render(); });
  navigator.getBattery?.().then((b) => { app.battery = b; }).catch(() => {});
  try {
    navigator.serviceWorker?.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  } catch { /* Firefox's private windows refuse service workers (and say so by throwing) */ }

  app.creds = load("creds");
  enrolCode = takeCode();
  alert.restore();
  visit.restore();
  updatePositions();
  showConn(app.creds ? "connecting" : "stopped");
  if (!app.creds) text("#conn", "Not set up");
  hooks.render();
  if (enrolCode) { enrol(); return; }
  if (app.creds) {
    connectHere();
    showPermissions();
    setupPush();
  }
}

window.addEventListener("hashchange", () => {
  const code = takeCode();
  if (code) { enrolCode = code; enrol(); }
});

// mqtt.min.js is a classic script loaded with `defer`: it has run before this module does.
start();
