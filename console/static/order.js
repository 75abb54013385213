// Vigil console: the queue's one order, for its rows (console.js, drawQueue) and within a
// worker's group (urgency.js, grouped) alike: what nobody has taken charge of first, then by
// priority (duress; panic and man down; visit overdue; no motion; device offline; test), then
// the oldest first. A new panic never falls below alerts someone is already handling.
"use strict";

const raisedMs = new WeakMap();  // an alert's raised_at, parsed once (a change replaces the alert)
function raisedAt(a) {
  let ms = raisedMs.get(a);
  if (ms === undefined) { ms = Date.parse(a.raised_at); raisedMs.set(a, ms); }
  return ms;
}

function queueOrder(x, y) {
  return Number(isTaken(x)) - Number(isTaken(y)) || x.priority - y.priority || raisedAt(x) - raisedAt(y);
}
