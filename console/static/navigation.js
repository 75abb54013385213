// Vigil console: getting around without the mouse, and on a narrow screen. The arrow keys
// move through the queue (the alert follows); single keys act on the alert on screen; on a
// phone or tablet the alert takes the queue's place, with a way back.
"use strict";

// The shortcuts, as docs/console.md lists them. Never while typing, nor with a modifier
// (the browser's own shortcuts), nor while a dialog is open.
const SHORTCUTS = {
  a: () => { if (!$("#ack").disabled) $("#ack").click(); },
  n: () => { if (!$("#note").disabled) $("#note").focus(); },
  r: () => { if (!$("#resolve-open").disabled) $("#resolve-open").click(); },
};

// The rows on screen: a worker's other alerts are hidden under their lead until it is opened
// (urgency.js), and the arrows then go through them.
const queueRows = () => [...document.querySelectorAll("#queue tbody tr:not([hidden])")];

// The queue's focused row, before a redraw moves or removes rows; restore() gives the focus
// back to it, or, if it left the queue, to the row now in its place.
function focusInQueue() {
  const had = document.activeElement;
  if (!(had instanceof HTMLTableRowElement) || !had.closest("#queue tbody")) return { restore() {} };
  const at = queueRows().indexOf(had);
  return {
    restore() {
      if (document.activeElement === had) return;
      if (had.isConnected && !had.hidden) { had.focus({ preventScroll: true }); return; }
      const rows = queueRows();
      if (document.activeElement === document.body && rows.length) rows[Math.min(at, rows.length - 1)].focus();
    },
  };
}

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

// Whether the alert takes the queue's place (the breakpoint in console.css).
const narrow = () => matchMedia("(max-width: 1100px)").matches;

// Open an alert from the queue (a click, Enter, a link): on a narrow screen the alert
// replaces the queue, so the focus goes to its title, at the top. Returns whether it could
// be shown (a link may name an alert that does not exist, or is not this operator's).
async function openAlert(id) {
  if (!(await select(id))) return false;
  if (!narrow() || state.selected !== id || $("#detail").hidden) return true;
  window.scrollTo(0, 0);
  $("#d-title").focus();
  return true;
}

// Move to a row. Side by side the alert follows; on a narrow screen, where the alert would
// take the queue's place at every key, only the focus moves, and Enter opens it.
function goTo(tr) {
  if (!tr) return;
  tr.focus();
  if (!narrow()) select(Number(tr.dataset.id));
}

// Back to the queue: on a narrow screen the alert gives the queue its place again.
// The alert stays selected (its row marked, refreshed when shown again), but nothing that
// arrives for it opens the pane again: only the operator does (console.js, closeAlert).
function backToQueue() {
  closeAlert();
  const row = rowsById.get(state.selected) || queueRows()[0];
  if (row) row.focus(); else $("#queue-pane h2").focus();
}

// After a resolve the alert leaves the queue: focus goes to the row that took its place.
function afterResolved(id) {
  // Meanwhile the operator may have opened another alert: that stays open, focus with it.
  if (state.selected !== id) return;
  const rows = queueRows();
  const gone = rows.findIndex((tr) => Number(tr.dataset.id) === id);
  const rest = rows.filter((tr) => Number(tr.dataset.id) !== id);
  const next = rest[Math.min(Math.max(gone, 0), rest.length - 1)];
  closeAlert();  // console.js: the resolved alert's updates do not bring it back
  if (next) next.focus(); else $("#queue-pane h2").focus();
}

$("#queue-pane h2").tabIndex = -1;
$("#d-title").tabIndex = -1;
$("#back-to-queue").addEventListener("click", backToQueue);

$("#queue tbody").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr");
  if (!tr || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const rows = queueRows();
  const at = rows.indexOf(tr);
  const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[ev.key];
  if (to === undefined) return;
  ev.preventDefault();
  goTo(rows[Math.min(Math.max(to, 0), rows.length - 1)]);
});

document.addEventListener("keydown", (ev) => {
  if (state.view !== "alerts" || $("#console").hidden || $("#resolve-dialog").open) return;
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  if (ev.key === "Escape") {
    // From a field too: Esc leaves it, as it would a menu.
    if (state.selected !== null) { ev.preventDefault(); backToQueue(); }
    return;
  }
  // Only on the alert on screen: on a narrow screen, back in the queue, it is not.
  const shown = !$("#detail").hidden && $("#detail").getClientRects().length > 0;
  if (typing(ev.target) || state.selected === null || !shown) return;
  const fn = SHORTCUTS[ev.key.toLowerCase()];
  if (!fn) return;
  ev.preventDefault();
  fn();
});
