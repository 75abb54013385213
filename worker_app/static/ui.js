// What the app's parts share: the state of this phone's alarm, the screen shown, the PIN pad.
// Everything people typed goes on the page with textContent, never as HTML.

export const $ = (sel) => document.querySelector(sel);

// `alert` and `visit` are kept in localStorage by their modules; the rest lives in memory.
export const app = {
  creds: null,      // {device_id, secret, mqtt_url, worker_name, heartbeat_s, centre_phone}
  link: null,       // link.js
  uploader: null,   // clips.js
  alert: null,      // {id, stage, ts, cancelling, recording}
  visit: null,      // {id, note, duration_s, due_ts, stage, place, cautions}
  overlay: null,    // a screen shown over the state's own: "pin", "visit-form", "settings"
  ended: null,      // {title, detail}: what has just ended, until the worker taps OK
  battery: null,
};

export const hooks = { render: () => {} };
export function render() { hooks.render(); }

export function vibrate(pattern) {
  try { navigator.vibrate?.(pattern); } catch { /* not on this phone */ }
}

// A request to the service's routes for this phone, with its own credentials (HTTP Basic).
// Never with the browser's: a refusal (401, once this phone has been switched off) then comes
// back as an answer, instead of the browser's sign-in prompt over the app or a request left
// hanging until someone answers it.
export function deviceFetch(creds, path, init = {}) {
  const { device_id: dev, secret } = creds;
  return fetch(`/api/v1/devices/${encodeURIComponent(dev)}/${path}`, {
    cache: "no-store",
    ...init,
    credentials: "omit",
    headers: { Authorization: "Basic " + btoa(`${dev}:${secret}`), ...(init.headers || {}) },
  });
}

export function text(sel, value) { $(sel).textContent = value ?? ""; }

export function battery() {
  const b = app.battery;
  return b && typeof b.level === "number" ? Math.round(b.level * 100) : null;
}

// ---- the PIN pad: the digits are kept here only until they are sent ----

let pin = "";
let pinDone = null;

export function openPin({ title, detail, onSubmit }) {
  pin = "";
  pinDone = onSubmit;
  text("#pin-title", title);
  text("#pin-detail", detail);
  dots();
  app.overlay = "pin";
  render();
}

export function closePin() {
  pin = "";
  pinDone = null;
  dots();
  text("#pin-title", "Enter your PIN");
  text("#pin-detail", "");
  app.overlay = null;
  render();
}

function dots() { text("#pin-dots", "•".repeat(pin.length)); }

function key(d) {
  if (pin.length < 8) pin += d;
  dots();
}

function submit() {
  if (pin.length < 4) {
    text("#pin-detail", "A PIN has 4 to 8 digits.");
    return;
  }
  const done = pinDone;
  const value = pin;
  closePin();
  done?.(value);
}

export function setupPinPad() {
  for (const b of document.querySelectorAll(".pad [data-digit]")) {
    b.addEventListener("click", () => key(b.dataset.digit));
  }
  $("#pin-del").addEventListener("click", () => { pin = pin.slice(0, -1); dots(); });
  $("#pin-ok").addEventListener("click", submit);
  $("#pin-back").addEventListener("click", closePin);
  document.addEventListener("keydown", (e) => {
    if (app.overlay !== "pin") return;
    if (/^[0-9]$/.test(e.key)) key(e.key);
    else if (e.key === "Backspace") { pin = pin.slice(0, -1); dots(); }
    else if (e.key === "Enter") submit();
    else return;
    e.preventDefault();
  });
}
