// Positions, as docs/privacy.md promises: sent while an alert is active or a visit is open,
// and once when the monitoring centre asks (`locate`); never otherwise. The phone's position
// is also read while the panic button is held, so the alert can carry a fresh fix.
import { app, battery } from "./ui.js";

const EVERY_MS = { alert: 10000, visit: 60000 };
const OPTIONS = { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 };

let watch = null;
let lastSent = 0;
export let lastFix = null;
export const holding = { now: false };

function sharing() {
  if (app.alert) return "alert";
  if (app.visit) return "visit";
  return null;
}

export function locOf(fix) {
  const loc = { lat: fix.lat, lon: fix.lon };
  if (Number.isFinite(fix.acc)) loc.acc = Math.max(0, fix.acc);
  if (Number.isFinite(fix.alt)) loc.alt = fix.alt;
  if (Number.isFinite(fix.spd) && fix.spd >= 0) loc.spd = fix.spd;
  if (Number.isFinite(fix.hdg) && fix.hdg >= 0 && fix.hdg <= 360) loc.hdg = fix.hdg;
  return loc;
}

function fixOf(p) {
  const c = p.coords;
  return { lat: c.latitude, lon: c.longitude, acc: c.accuracy, alt: c.altitude, spd: c.speed,
    hdg: c.heading, ts: Math.round(p.timestamp || Date.now()) };
}

export function send(fix) {
  if (!fix || !app.link) return;
  const payload = { v: 1, ts: fix.ts, loc: locOf(fix) };  // when the fix was taken
  const b = battery();
  if (b !== null) payload.batt = b;
  lastSent = Date.now();
  app.link.send("location", payload, { qos: 1 });
}

function onFix(p) {
  lastFix = fixOf(p);
  const why = sharing();
  if (why && Date.now() - lastSent >= EVERY_MS[why]) send(lastFix);
}

// A phone that does not move may report no new fix for a long time: the last one goes again
// at the same pace, so the centre keeps hearing from it during an alert or a visit.
setInterval(() => {
  const why = sharing();
  if (why && lastFix && Date.now() - lastSent >= EVERY_MS[why]) send(lastFix);
}, 5000);

// Watch the position exactly while it may be used: an alert, a visit, or the button held.
export function update() {
  const want = sharing() !== null || holding.now;
  if (!navigator.geolocation) return;
  if (want && watch === null) {
    watch = navigator.geolocation.watchPosition(onFix, () => {}, OPTIONS);
  } else if (!want && watch !== null) {
    navigator.geolocation.clearWatch(watch);
    watch = null;
  }
  if (!sharing()) lastSent = 0;
}

// A fix for a visit about to start: the one at hand, or one read now (a few seconds at most).
export function fixSoon(ms = 4000) {
  if (lastFix && Date.now() - lastFix.ts < 60000) return Promise.resolve(lastFix);
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition((p) => { lastFix = fixOf(p); resolve(lastFix); },
      () => resolve(null), { enableHighAccuracy: true, maximumAge: 30000, timeout: ms });
  });
}

// `locate`: one fresh fix, sent at once. Nothing on the screen changes.
export function locate() {
  if (!navigator.geolocation) return;
  navigator.geolocation.getCurrentPosition((p) => { lastFix = fixOf(p); send(lastFix); }, () => {},
    { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
}
