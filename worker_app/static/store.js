// What the app keeps on the phone: small state in localStorage (credentials, the alert or
// visit under way, the outbox of messages not yet delivered), recordings in IndexedDB.
// Nothing kept here says which PIN was keyed: a PIN is kept only until the broker has it.

const PREFIX = "vigil.app.";

// A copy in memory as well: if the browser stops the page from writing (a full disk, a
// page being closed), the app goes on with what it holds.
const held = new Map();
let frozen = false;

// This window has handed over to another one: it changes nothing kept any more.
export function freeze() { frozen = true; }

export function load(key, fallback = null) {
  if (held.has(key)) return held.get(key) ?? fallback;
  try {
    const raw = localStorage.getItem(PREFIX + key);
    const value = raw === null ? null : JSON.parse(raw);
    held.set(key, value);
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

export function save(key, value) {
  if (frozen) return;
  const gone = value === null || value === undefined;
  held.set(key, gone ? null : JSON.parse(JSON.stringify(value)));
  try {
    if (gone) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch (err) {
    console.warn(`Vigil could not keep ${key} on this phone:`, err);
  }
}

export const DEFAULTS = { hold_ms: 2000, fallback_s: 15, clip_ms: 10000, memo_max_s: 60 };

export function settings() {
  return { ...DEFAULTS, ...(load("settings", {}) || {}) };
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- recordings waiting to be uploaded (IndexedDB: bytes do not fit localStorage) ----

let dbPromise = null;

function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open("vigil-app", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("clips", { keyPath: "id" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}

async function tx(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction("clips", mode);
    const result = fn(t.objectStore("clips"));
    t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

export const clips = {
  put: (clip) => tx("readwrite", (s) => s.put(clip)),
  all: () => tx("readonly", (s) => s.getAll()),
  remove: (id) => tx("readwrite", (s) => s.delete(id)),
};
