// The panic alert: press and hold, the alert resent until the centre has it, its stages in
// plain words, the phone's own fallbacks, listening, and the cancel with a PIN. A cancel and a
// duress "cancel" are the same here: the app sends the PIN it was given and shows what the
// service answers, and the service answers both alike.
import { $, app, battery, deviceFetch, openPin, render, text, vibrate } from "./ui.js";
import { holding, lastFix, locOf, update as updatePositions } from "./positions.js";
import { Listener } from "./clips.js";
import { load, save, settings, uuid } from "./store.js";

const RANK = { sending: 0, received: 1, acknowledged: 2 };
const STAGES = {
  sending: ["Sending…", "Sending your alert to the monitoring centre. Keep this app open."],
  received: ["The monitoring centre has your alert",
    "Someone is dealing with it now. If you can, move somewhere safe."],
  acknowledged: ["Help is on the way", "An operator has taken charge of your alert."],
};
const CANCELLING = ["Cancelling…", "Sending your PIN to the monitoring centre."];

let listener = null;
let recordingNote = "";

export function restore() {
  app.alert = load("alert");
  if (app.alert?.recording) startListening();
  sendPresses();
}

function keep() { save("alert", app.alert); }

// ---- press and hold ----

let holdTimer = null;
let buzz = null;

function pressStart(e) {
  e?.preventDefault?.();
  if (holdTimer || app.alert) return;
  const ms = settings().hold_ms;
  const button = $("#panic");
  if (e?.pointerId !== undefined) button.setPointerCapture?.(e.pointerId);
  button.style.setProperty("--hold", `${ms}ms`);
  button.classList.add("holding");
  holding.now = true;
  updatePositions();  // a fresh fix for the alert, read while the button is held
  vibrate(60);
  buzz = setInterval(() => vibrate(60), 500);
  holdTimer = setTimeout(() => { stopHold(); fire({}); }, ms);
}

function stopHold() {
  clearTimeout(holdTimer);
  clearInterval(buzz);
  holdTimer = null;
  buzz = null;
  $("#panic").classList.remove("holding");
  holding.now = false;
  updatePositions();
}

function pressEnd() {
  if (!holdTimer) return;
  stopHold();
  vibrate(0);
}

export function fire({ note = null }) {
  if (app.alert) return;
  const id = uuid();
  const typed = $("#alert-note").value.trim();
  const payload = { v: 1, ts: Date.now(), id, type: "red", trigger: "app" };
  if (lastFix) payload.loc = locOf(lastFix);
  const b = battery();
  if (b !== null) payload.batt = b;
  const words = [typed, note].filter(Boolean).join("\n").slice(0, 500);
  if (words) payload.note = words;
  app.alert = { id, stage: "sending", ts: payload.ts, cancelling: false, recording: true };
  keep();
  app.link.send("alert", payload, { key: `alert:${id}`, keep: true });
  $("#alert-note").value = "";
  app.ended = null;
  app.overlay = null;
  vibrate([400, 150, 400]);
  updatePositions();
  startListening();
  render();
}

// ---- what the service says ----

function mine(m) { return app.alert && m.alert_id === app.alert.id; }

export function onCommand(m) {
  if (m.alert_id && ["alert_received", "alert_acknowledged", "alert_closed", "alert_cancelled"].includes(m.type)) {
    app.link.release(`alert:${m.alert_id}`);
  }
  switch (m.type) {
    case "alert_received": advance(m, "received"); break;
    case "alert_acknowledged": advance(m, "acknowledged"); break;
    case "alert_closed":
      end(m, "Closed", "The monitoring centre has closed your alert.");
      break;
    case "alert_cancelled":
      end(m, "Alert cancelled", "Your alert has been cancelled.");
      break;
    case "cancel_rejected":
      if (!mine(m)) return;
      app.alert.cancelling = false;
      app.alert.message = "That PIN was not accepted. Your alert is still active.";
      keep();
      vibrate([200, 100, 200]);
      render();
      break;
    default:
  }
}

function advance(m, stage) {
  if (!mine(m) || RANK[stage] <= RANK[app.alert.stage]) return;
  app.alert.stage = stage;
  keep();
  if (stage === "acknowledged") vibrate([200, 100, 200, 100, 200]);
  render();
}

function end(m, title, detail) {
  if (!mine(m)) return;
  stopListening();
  app.alert = null;
  keep();
  app.ended = { title, detail };
  if (app.overlay === "pin") app.overlay = null;
  updatePositions();
  render();
}

// ---- listening ----

function startListening() {
  if (listener || !app.alert) return;
  const owner = { alert_id: app.alert.id };
  listener = new Listener(owner, () => app.uploader?.run());
  recordingNote = "Recording sound for the monitoring centre.";
  listener.start().catch((err) => {
    listener = null;
    recordingNote = `The microphone could not be used (${err?.message || err}).`;
    render();
  });
}

function stopListening() {
  listener?.stop();
  listener = null;
  recordingNote = "";
}

function toggleRecording() {
  if (!app.alert) return;
  if (app.alert.recording) {
    app.alert.recording = false;
    stopListening();
    recordingNote = "Recording stopped. What was recorded before is still sent to the centre.";
  } else {
    app.alert.recording = true;
    startListening();
  }
  // The operator listening is told why the clips stopped (or came back): the press goes in
  // the alert's timeline, sent until the service has it, with the moment it happened.
  (app.alert.presses ||= []).push({ recording: app.alert.recording, ts: Date.now() });
  keep();
  render();
  sendPresses();
}

let pressesTimer = null;

async function sendPresses() {
  clearTimeout(pressesTimer);
  const a = app.alert;
  if (!a?.presses?.length || !app.creds) return;
  while (a.presses.length) {
    let res;
    try {
      res = await deviceFetch(app.creds, `alerts/${encodeURIComponent(a.id)}/recording`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(a.presses[0]),
      });
    } catch {
      res = null;
    }
    // 404: the alert is not stored yet (it is still being sent); 4xx otherwise: never.
    if (!res || res.status === 404 || res.status >= 500) {
      pressesTimer = setTimeout(sendPresses, 5000);
      return;
    }
    a.presses.shift();
    keep();
  }
}

// ---- the screen ----

export function draw() {
  const a = app.alert;
  const section = $("#alert");
  if (!a) {
    // Nothing of an alert that is over stays in the page.
    section.removeAttribute("data-stage");
    for (const sel of ["#alert-stage", "#alert-detail", "#listening", "#rec-toggle"]) text(sel, "");
    $("#fallback").hidden = true;
    $("#cancel-alert").hidden = false;
    return;
  }
  const [title, detail] = a.cancelling ? CANCELLING : STAGES[a.stage];
  section.dataset.stage = a.cancelling ? "cancelling" : a.stage;
  text("#alert-stage", title);
  text("#alert-detail", a.message && !a.cancelling ? a.message : detail);
  text("#listening", a.recording ? recordingNote || "Recording sound for the monitoring centre." : recordingNote);
  text("#rec-toggle", a.recording ? "Stop recording" : "Record sound again");
  $("#cancel-alert").hidden = a.cancelling;
  drawFallback();
}

function drawFallback() {
  const a = app.alert;
  const late = a && a.stage === "sending" && Date.now() - a.ts >= settings().fallback_s * 1000;
  const box = $("#fallback");
  if (box.hidden === !late) return;
  box.hidden = !late;
  if (!late) return;
  const phone = (app.creds?.centre_phone || "").replace(/[^0-9+]/g, "");
  $("#fallback-call").hidden = !phone;
  $("#fallback-sms").hidden = !phone;
  $("#fallback-none").hidden = Boolean(phone);
  if (phone) {
    $("#fallback-call").href = `tel:${phone}`;
    const where = lastFix ? ` I am at https://www.openstreetmap.org/?mlat=${lastFix.lat.toFixed(5)}&mlon=${lastFix.lon.toFixed(5)}` : "";
    const body = `HELP: panic alarm from ${app.creds.worker_name || "a lone worker"}.${where}`;
    $("#fallback-sms").href = `sms:${phone}?&body=${encodeURIComponent(body)}`;
    text("#fallback-call", `Call the monitoring centre (${app.creds.centre_phone})`);
  }
  vibrate([600, 200, 600]);
}

export function setup() {
  const button = $("#panic");
  button.addEventListener("pointerdown", pressStart);
  button.addEventListener("pointerup", pressEnd);
  button.addEventListener("pointercancel", pressEnd);
  button.addEventListener("contextmenu", (e) => e.preventDefault());
  button.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) pressStart(e);
  });
  button.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") pressEnd(); });
  button.addEventListener("blur", pressEnd);
  $("#rec-toggle").addEventListener("click", toggleRecording);
  $("#cancel-alert").addEventListener("click", () => {
    openPin({
      title: "Cancel your alert",
      detail: "Enter your PIN to tell the monitoring centre it was a false alarm.",
      onSubmit: (pin) => {
        if (!app.alert) return;
        app.link.send("alert/cancel", { v: 1, ts: Date.now(), alert_id: app.alert.id, pin },
          { key: `cancel:${uuid()}` });
        app.alert.cancelling = true;
        app.alert.message = null;
        keep();
        render();
        // No answer at all (the connection is gone, say): the worker is not left waiting on
        // "Cancelling…" with no way to key the PIN again. The same for every PIN.
        const id = app.alert.id;
        setTimeout(() => {
          if (app.alert?.id !== id || !app.alert.cancelling) return;
          app.alert.cancelling = false;
          app.alert.message = "No answer yet. Your alert is still active: enter your PIN again to cancel it.";
          keep();
          render();
        }, 30000);
      },
    });
  });
  setInterval(() => { if (app.alert) drawFallback(); }, 1000);
}
