// The address of a visit: the places the organisation has recorded, searched as the worker
// types (GET /api/v1/devices/{id}/places, with this phone's own credentials), and the
// cautions at the address shown before the visit starts and while it is open. The search is a
// help, never a step: it fails quietly, never holds anything up, and the worker's own words
// always do instead.
import { $, app, deviceFetch, text } from "./ui.js";

const PAUSE_MS = 250;       // a pause in the typing before the search goes
const GIVE_UP_MS = 6000;    // an answer slower than this is not waited for
const MIN_CHARS = 2;        // the service answers nothing for fewer
const QUIET = {
  failed: "The address search is not available just now. Type the address in your own words.",
  none: "No saved address matches. Keep what you typed: it goes with the visit as it is.",
};

let timer = null;
let pending = null;   // the AbortController of the search under way
let found = [];       // the places of the answer shown
let active = -1;      // the option the arrow keys are on
let chosen = null;    // {id, address, cautions}: picked from the list, until the text changes

const input = () => $("#visit-address");
const list = () => $("#place-list");

// What the service sent, kept to the shape the screens use: nothing else of it is trusted.
export function cleanCautions(items) {
  if (!Array.isArray(items)) return [];
  return items.filter((c) => c && typeof c === "object").slice(0, 10).map((c) => ({
    kind: String(c.kind || "other"),
    label: String(c.label || c.kind || "Caution"),
    text: String(c.text || ""),
  }));
}

function cleanPlaces(items) {
  if (!Array.isArray(items)) return [];
  return items.filter((p) => p && Number.isInteger(p.id) && typeof p.address === "string")
    .slice(0, 10).map((p) => ({ id: p.id, address: p.address, cautions: cleanCautions(p.cautions) }));
}

// The picked place, for the visit's `start`; null when the worker kept their own words.
export function chosenPlace() { return chosen; }

// The cautions at an address, in `box`: its kind in words and the text recorded. With
// `always`, a place with none says so (the form: the worker asked about this address).
export function drawCautions(box, place, cautions, { always = false } = {}) {
  box.replaceChildren();
  const items = cleanCautions(cautions);
  if (!place || (!items.length && !always)) { box.hidden = true; return; }
  const head = document.createElement("h2");
  head.textContent = "Cautions at this address";
  const where = document.createElement("p");
  where.className = "where";
  where.textContent = place.address || "";
  box.append(head, where);
  if (!items.length) {
    const none = document.createElement("p");
    none.textContent = "Nothing is recorded about this address.";
    box.append(none);
  } else {
    const ul = document.createElement("ul");
    for (const c of items) {
      const li = document.createElement("li");
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = c.label;
      const words = document.createElement("span");
      words.textContent = c.text;
      li.append(kind, words);
      ul.append(li);
    }
    box.append(ul);
  }
  box.hidden = false;
}

function showList() {
  const ul = list();
  ul.replaceChildren();
  found.forEach((p, i) => {
    const li = document.createElement("li");
    li.id = `place-opt-${i}`;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === active));
    const address = document.createElement("span");
    address.textContent = p.address;
    const sub = document.createElement("span");
    sub.className = "sub";
    const n = p.cautions.length;
    sub.textContent = n ? `${n} caution${n === 1 ? "" : "s"} recorded` : "No cautions recorded";
    li.append(address, sub);
    li.addEventListener("click", () => pick(i));
    ul.append(li);
  });
  const open = found.length > 0;
  ul.hidden = !open;
  input().setAttribute("aria-expanded", String(open));
  if (active >= 0 && open) {
    input().setAttribute("aria-activedescendant", `place-opt-${active}`);
    ul.children[active]?.scrollIntoView({ block: "nearest" });
  } else {
    input().removeAttribute("aria-activedescendant");
  }
}

function closeList() {
  found = [];
  active = -1;
  showList();
}

function pick(i) {
  const p = found[i];
  if (!p) return;
  chosen = p;
  input().value = p.address;
  closeList();
  text("#place-state", "");
  drawCautions($("#place-cautions"), chosen, chosen.cautions, { always: true });
}

function drop() {
  clearTimeout(timer);
  timer = null;
  pending?.abort();
  pending = null;
}

async function search(q) {
  drop();
  if (!app.creds) return;
  const ask = new AbortController();
  pending = ask;
  const late = setTimeout(() => ask.abort(), GIVE_UP_MS);
  let places = null;
  try {
    const res = await deviceFetch(app.creds, `places?q=${encodeURIComponent(q)}`, { signal: ask.signal });
    if (res.ok) places = cleanPlaces(await res.json());
  } catch {
    places = null;  // no network, too slow, or not JSON: the same to the worker
  } finally {
    clearTimeout(late);
  }
  // A newer search, or the form closed, since this one went: its answer is not wanted.
  if (pending !== ask) return;
  pending = null;
  if (input().value.trim() !== q) return;
  found = places || [];
  active = -1;
  showList();
  text("#place-state", places === null ? QUIET.failed : found.length ? "" : QUIET.none);
}

function typed() {
  const q = input().value.trim();
  // Changing the text of a picked address makes it the worker's own words again.
  if (chosen && q !== chosen.address) {
    chosen = null;
    drawCautions($("#place-cautions"), null, []);
  }
  drop();
  if (chosen || q.length < MIN_CHARS) {
    closeList();
    text("#place-state", "");
    return;
  }
  timer = setTimeout(() => search(q), PAUSE_MS);
}

function keys(e) {
  const open = found.length > 0;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    if (!open) return;
    e.preventDefault();
    const step = e.key === "ArrowDown" ? 1 : -1;
    active = (active + step + found.length + 1) % (found.length + 1);
    if (active === found.length) active = -1;  // past the last: back to the text
    showList();
  } else if (e.key === "Enter") {
    // Enter in the address picks, and never starts the visit half typed.
    e.preventDefault();
    if (open && active >= 0) pick(active);
    else closeList();
  } else if (e.key === "Escape" && open) {
    e.preventDefault();
    closeList();
  }
}

// The form opened or closed, the visit started: nothing of the last address stays.
export function reset() {
  drop();
  chosen = null;
  input().value = "";
  closeList();
  text("#place-state", "");
  drawCautions($("#place-cautions"), null, []);
}

export function setup() {
  input().addEventListener("input", typed);
  input().addEventListener("keydown", keys);
  // A tap on an option must not first take the focus away and close the list under it.
  list().addEventListener("pointerdown", (e) => e.preventDefault());
}
