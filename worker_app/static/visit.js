// The timed visit (amber timer): where (an address searched or the worker's own words) and
// why, how long, an optional voice memo; the cautions at the address; the countdown; check
// in, extend, end with the PIN; `visit_due` takes the whole screen.
import { $, app, closePin, openPin, render, text, vibrate } from "./ui.js";
import { fixSoon, holding, lastFix, locOf, update as updatePositions } from "./positions.js";
import { Memo } from "./clips.js";
import { load, save, uuid } from "./store.js";
import { fire } from "./alert.js";
import * as places from "./places.js";

let memo = null;       // a Memo being recorded or recorded, until the visit starts
let memoStarted = 0;
let wakeLock = null;
let audio = null;      // an AudioContext, opened on a tap so it may sound later
let alarm = null;
let cautionsShown = "";  // the visit's cautions as last drawn: draw() runs every second

export function restore() {
  app.visit = load("visit");
  holdAwake();
}

function keep() { save("visit", app.visit); }

function send(action, extra = {}) {
  const v = app.visit;
  const payload = { v: 1, ts: Date.now(), id: v.id, action, ...extra };
  if (lastFix && action !== "end") payload.loc = locOf(lastFix);
  app.link.send("visit", payload, { key: `visit:${v.id}:${action}:${payload.ts}` });
}

function unlockAudio() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    audio.resume?.();
  } catch { audio = null; }
}

// ---- screen wake lock while a visit is open ----

async function holdAwake() {
  if (!app.visit || wakeLock || document.visibilityState !== "visible" || !navigator.wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch { wakeLock = null; }
}

function letSleep() {
  wakeLock?.release().catch(() => {});
  wakeLock = null;
}

// ---- the due alarm: sound and vibration until the worker answers ----

function beep() {
  vibrate([700, 300, 700]);
  if (!audio) return;
  const t = audio.currentTime;
  for (const at of [0, 0.35, 0.7]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.6, t + at);
    gain.gain.setValueAtTime(0, t + at + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(t + at);
    osc.stop(t + at + 0.3);
  }
}

function sound(on) {
  if (on && !alarm) { beep(); alarm = setInterval(beep, 2500); }
  if (!on && alarm) { clearInterval(alarm); alarm = null; vibrate(0); }
}

// ---- starting ----

function minutes() {
  const chosen = document.querySelector("input[name=minutes]:checked")?.value;
  const n = chosen === "other" ? Number($("#visit-minutes").value) : Number(chosen);
  return Number.isFinite(n) && n >= 1 ? Math.min(Math.round(n), 1440) : null;
}

async function start(e) {
  e.preventDefault();
  unlockAudio();
  const mins = minutes();
  if (!mins) { text("#memo-state", "Choose how long the visit will take."); return; }
  const id = `visit-${uuid()}`;
  // The address goes in the note too: the centre reads it in an overdue alert whether or not
  // it was picked from the list.
  const address = $("#visit-address").value.trim();
  const why = $("#visit-note").value.trim();
  const note = [address, why].filter(Boolean).join(" — ").slice(0, 500);
  const place = places.chosenPlace();
  const duration = mins * 60;
  const extra = { duration_s: duration };
  if (note) extra.note = note;
  if (place) extra.place = place.id;
  if (memo) {
    const recorded = memo;
    memo = null;
    await recorded.stop();
    const clip = await recorded.keep(id).catch(() => null);
    if (clip) { extra.memo = clip.id; app.uploader.run(); }
  }
  await fixSoon();  // read since the form opened, as a rule
  holding.now = false;
  // What was shown before the start stays on the screen until the service's answer replaces it.
  app.visit = { id, note, duration_s: duration, due_ts: Date.now() + duration * 1000, stage: "starting",
    place: place ? { id: place.id, address: place.address } : null, cautions: place ? place.cautions : [] };
  keep();
  send("start", extra);
  $("#visit-note").value = "";
  places.reset();
  text("#memo-state", "");
  text("#memo-rec", "Record a voice memo (optional)");
  app.overlay = null;
  updatePositions();
  holdAwake();
  render();
}

async function toggleMemo() {
  unlockAudio();
  if (memo && memo.recording) {
    memo.recording = false;
    await memo.stop();
    const s = Math.round((Date.now() - memoStarted) / 1000);
    text("#memo-state", `Voice memo recorded (${s} s). It is sent when the visit starts.`);
    text("#memo-rec", "Record the memo again");
    return;
  }
  memo = new Memo();
  try {
    await memo.start();
  } catch (err) {
    memo = null;
    text("#memo-state", `The microphone could not be used (${err?.message || err}).`);
    return;
  }
  memo.recording = true;
  memoStarted = Date.now();
  text("#memo-state", "Recording… say where you are going and why. Tap again to stop.");
  text("#memo-rec", "Stop recording the memo");
}

// ---- under way ----

function checkin() {
  if (!app.visit) return;
  unlockAudio();
  send("checkin");
  Object.assign(app.visit, { stage: "open", due_ts: Date.now() + app.visit.duration_s * 1000,
    message: "Checked in: the timer starts again." });
  keep();
  render();
}

function extend(mins) {
  if (!app.visit) return;
  unlockAudio();
  send("extend", { duration_s: mins * 60 });
  Object.assign(app.visit, { stage: "open", duration_s: mins * 60, due_ts: Date.now() + mins * 60000,
    message: `${mins} more minutes: the timer starts again.` });
  keep();
  render();
}

function askEnd() {
  openPin({
    title: "End your visit",
    detail: "Enter your PIN to end the visit.",
    onSubmit: (pin) => {
      if (!app.visit) return;
      send("end", { pin });
      app.visit.ending = true;
      app.visit.message = "Ending the visit…";
      keep();
      render();
    },
  });
}

function help() {
  sound(false);
  const note = app.visit?.note ? `Visit: ${app.visit.note}` : "Visit";
  fire({ note });
}

export function onCommand(m) {
  const v = app.visit;
  if (!v || m.visit_id !== v.id) return;
  switch (m.type) {
    case "visit_started":
      if (v.ending) return;
      v.stage = "open";
      if (Number.isFinite(m.due_ts)) v.due_ts = m.due_ts;
      v.message = v.message || "The monitoring centre has your visit.";
      // The place the service matched (picked, or found by the position) and its cautions.
      if (Array.isArray(m.cautions)) {
        v.cautions = places.cleanCautions(m.cautions);
        const p = m.place;
        if (p && typeof p === "object") v.place = { id: p.id, address: String(p.address || "") };
      }
      break;
    case "visit_due":
      v.stage = "due";
      if (Number.isFinite(m.due_ts)) v.due_ts = m.due_ts;
      break;
    case "visit_end_rejected":
      v.ending = false;
      v.message = "That PIN was not accepted. Your visit is still running.";
      vibrate([200, 100, 200]);
      break;
    case "visit_ended":
      app.visit = null;
      keep();
      sound(false);
      letSleep();
      if (app.overlay === "pin") closePin();
      app.ended = { title: "Visit ended", detail: "Your visit has ended. Take care." };
      updatePositions();
      render();
      return;
    default:
      return;
  }
  keep();
  render();
}

function clock(ms) {
  const s = Math.ceil(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mmss = `${String(m).padStart(h ? 2 : 1, "0")}:${String(r).padStart(2, "0")}`;
  return h ? `${h}:${mmss}` : mmss;
}

export function draw() {
  const v = app.visit;
  const section = $("#visit");
  if (!v) {
    for (const sel of ["#visit-note-shown", "#visit-left", "#visit-due-at", "#visit-msg"]) text(sel, "");
    places.drawCautions($("#visit-cautions"), null, []);
    $("#visit-cautions-link").hidden = true;
    text("#visit-cautions-link", "");
    cautionsShown = "";
    section.removeAttribute("data-late");
    sound(false);
    return;
  }
  const left = v.due_ts - Date.now();
  text("#visit-title", v.stage === "starting" ? "Starting your visit…" : "Visit timer running");
  text("#visit-note-shown", v.note || "");
  text("#visit-left", left >= 0 ? clock(left) : `${clock(left)} over`);
  text("#visit-due-at", `Check in by ${new Date(v.due_ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
  text("#visit-msg", v.message || "");
  drawVisitCautions(v);
  section.toggleAttribute("data-late", left < 0);
  for (const sel of ["#visit-checkin", "#visit-extend-15", "#visit-extend-30", "#visit-end", "#due-checkin", "#due-extend", "#due-end"]) {
    $(sel).disabled = Boolean(v.ending);
  }
  sound(v.stage === "due" && !app.alert && !v.ending);
}

function drawVisitCautions(v) {
  const now = JSON.stringify([v.place, v.cautions]);
  if (now === cautionsShown) return;
  cautionsShown = now;
  places.drawCautions($("#visit-cautions"), v.place, v.cautions);
  const kinds = [...new Set((v.cautions || []).map((c) => c.label))];
  const link = $("#visit-cautions-link");
  link.hidden = !v.place || !kinds.length;
  link.textContent = kinds.length ? `Cautions at this address: ${kinds.join(", ")}. Read them ↓` : "";
}

export function isDue() { return app.visit?.stage === "due"; }

export function setup() {
  $("#visit-new").addEventListener("click", () => {
    unlockAudio();
    holding.now = true;  // the position is read while the form is filled in, for the start
    updatePositions();
    places.reset();
    app.overlay = "visit-form";
    render();
  });
  $("#visit-cancel-form").addEventListener("click", () => {
    places.reset();
    holding.now = false;
    updatePositions();
    app.overlay = null;
    render();
  });
  $("#visit-start-form").addEventListener("submit", start);
  places.setup();
  $("#visit-minutes").addEventListener("focus", () => { document.querySelector("input[name=minutes][value=other]").checked = true; });
  $("#memo-rec").addEventListener("click", toggleMemo);
  $("#visit-checkin").addEventListener("click", checkin);
  $("#visit-extend-15").addEventListener("click", () => extend(15));
  $("#visit-extend-30").addEventListener("click", () => extend(30));
  $("#visit-end").addEventListener("click", askEnd);
  $("#visit-help").addEventListener("click", help);
  $("#visit-cautions-link").addEventListener("click", () => $("#visit-cautions").scrollIntoView({ block: "start" }));
  $("#due-checkin").addEventListener("click", checkin);
  $("#due-extend").addEventListener("click", () => extend(15));
  $("#due-end").addEventListener("click", askEnd);
  $("#due-help").addEventListener("click", help);
  document.addEventListener("visibilitychange", holdAwake);
  setInterval(() => { if (app.visit) draw(); }, 1000);
}
