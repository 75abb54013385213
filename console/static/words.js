// Vigil console: the words people read instead of stored values (alert states, timeline
// entries, roles...). The table is the service's own (monitor/alerts/labels.py), told to the
// console at sign-in with the rest of GET /api/v1/console/meta, as `labels`.
"use strict";

// A value the table has no words for yet, made readable rather than shown raw, as the
// service's labels.humanise does: "call_bridged" is "Call bridged".
function humanise(value) {
  const text = String(value).replace(/[_.]/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// What people call `value` in `table` ("state", "entry", "outcome", "type", "role", "trigger",
// and escalation's "status").
function word(table, value) {
  if (value === null || value === undefined || value === "") return "";
  return state.meta?.labels?.[table]?.[value] ?? humanise(value);
}

// Who did something, as the service's labels.actor_label says it: "user:ana" is ana,
// "device:b-7" the device b-7, "system" Vigil itself.
function who(actor) {
  if (!actor) return "";
  const i = actor.indexOf(":");
  if (i < 0) return actor === "system" ? "Vigil" : humanise(actor);
  const kind = actor.slice(0, i), name = actor.slice(i + 1);
  return kind === "user" ? name : `${humanise(kind).toLowerCase()} ${name}`;
}
