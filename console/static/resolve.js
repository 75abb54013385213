// Vigil console: resolving an alert, on purpose. Two steps in one dialog: the outcome (no
// default) and a note; then what will be recorded, to confirm. An alert someone else has
// taken charge of is resolved only by taking it over from them, said in words and ticked
// (the service refuses it otherwise, 409). Other parts of the console add what resolving
// must also ask through `resolveChecks`, below.
"use strict";

// What else resolving asks, added by other parts of the console (procedures: a reason for
// steps left unticked). Each check is an object with:
//   open(alert, box)  fill `box`, a <div> in the first step, for this alert (required
//                     controls in it are checked like the outcome);
//   summary()         [label, text] pairs for the confirmation, or [];
//   body()            fields to add to the resolve request, or {}.
const resolveChecks = [];

const resolving = { alert: null, holder: null };

// Who holds the alert, if someone other than the person signed in; else null.
function holderOther(a) {
  if (a.state !== "acknowledged" || !a.acknowledged_by) return null;
  if (a.acknowledged_by === `user:${state.me.username}`) return null;
  return who(a.acknowledged_by);  // words.js
}

function resolveStep(confirming) {
  $("#rs-choose").hidden = confirming;
  $("#rs-held").hidden = confirming || !resolving.holder;
  $("#rs-confirm-step").hidden = !confirming;
  $("#rs-next").hidden = confirming;
  $("#rs-back").hidden = !confirming;
  $("#rs-confirm").hidden = !confirming;
  $("#rs-error").textContent = "";
  (confirming ? $("#rs-confirm") : $("#outcome")).focus();
}

function openResolve() {
  const a = state.alerts.get(state.selected);
  if (!a || !canBecome(a, "resolved")) return;
  resolving.alert = a;
  resolving.holder = holderOther(a);
  $("#rs-alert").textContent = $("#d-title").textContent;
  $("#outcome").value = "";
  $("#resolve-note").value = "";
  $("#rs-take-over").checked = false;
  $("#rs-take-over").required = Boolean(resolving.holder);
  if (resolving.holder) showHolder();
  const extra = $("#rs-extra");
  extra.replaceChildren();
  for (const check of resolveChecks) {
    const box = el("div");
    extra.append(box);
    check.open(a, box);
  }
  $("#resolve-dialog").showModal();
  resolveStep(false);
}

// The first step's answers, checked in the browser (the service checks them again).
function resolveSummary() {
  const rows = [["Alert", $("#d-title").textContent],
    ["Outcome", OUTCOMES[$("#outcome").value]], ["Note", $("#resolve-note").value.trim()]];
  if (resolving.holder) rows.push(["Taken over from", resolving.holder]);
  for (const check of resolveChecks) rows.push(...check.summary());
  return rows;
}

async function confirmResolve() {
  const a = resolving.alert;
  const body = { outcome: $("#outcome").value, note: $("#resolve-note").value.trim() };
  if (resolving.holder) body.take_over = true;
  for (const check of resolveChecks) Object.assign(body, check.body());
  $("#rs-confirm").disabled = true;
  try {
    await post(`/api/v1/alerts/${a.id}/resolve`, body);
  } catch (err) {
    if (err.message === "signed out") return;
    // Someone took charge meanwhile, or it closed: show why, with the alert as it is now.
    await select(a.id);
    const now = state.alerts.get(a.id);
    resolving.holder = now ? holderOther(now) : null;
    $("#rs-take-over").required = Boolean(resolving.holder);
    if (resolving.holder) showHolder();
    resolveStep(false);
    $("#rs-error").textContent = err.message;
    return;
  } finally {
    $("#rs-confirm").disabled = state.stale;
  }
  $("#resolve-dialog").close();
  await select(a.id);
  afterResolved(a.id);  // navigation.js: focus moves on in the queue
}

// The warning that someone else holds the alert, and the take-over the resolver must tick.
function showHolder() {
  $("#rs-held-text").textContent = `${resolving.holder} has taken charge of this alert and ` +
    "may be handling it now (on the phone to the worker, or with the police).";
  $("#rs-take-over-text").textContent = `I take it over from ${resolving.holder} to resolve it`;
}

$("#resolve-open").addEventListener("click", openResolve);
$("#rs-cancel").addEventListener("click", () => $("#resolve-dialog").close());
$("#rs-back").addEventListener("click", () => resolveStep(false));
$("#resolve-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!$("#rs-confirm-step").hidden) { confirmResolve(); return; }
  // The note must say something: spaces are not a note.
  $("#resolve-note").setCustomValidity($("#resolve-note").value.trim() || !$("#resolve-note").value
    ? "" : "Write what happened and what was done.");
  if (!$("#resolve-form").reportValidity()) return;
  $("#rs-summary").replaceChildren(...resolveSummary().flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  resolveStep(true);
});
// Back to where the operator was once the dialog closes.
$("#resolve-dialog").addEventListener("close", () => {
  if (!$("#detail").hidden && !$("#resolve-open").disabled) $("#resolve-open").focus();
});
