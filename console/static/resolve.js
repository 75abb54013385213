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
  $("#rs-next").disabled = false;
  $("#rs-confirm").disabled = Boolean(state.stale);
  $("#resolve-dialog").showModal();
  resolveStep(false);
}

// The first step's answers, checked in the browser (the service checks them again).
function resolveSummary() {
  const rows = [["Alert", $("#d-title").textContent],
    ["Outcome", word("outcome", $("#outcome").value)], ["Note", $("#resolve-note").value.trim()]];
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
    await refresh(a.id);  // console.js: the pane as it is, not opened again
    const now = state.alerts.get(a.id);
    resolving.holder = now ? holderOther(now) : null;
    $("#rs-take-over").required = Boolean(resolving.holder);
    if (resolving.holder) showHolder();
    resolveStep(false);
    // The service's words are for any client; here the warning above says what to do.
    $("#rs-error").textContent = resolving.holder
      ? `${resolving.holder} took charge of this alert just before you confirmed.` : err.message;
    return;
  } finally {
    $("#rs-confirm").disabled = state.stale;
  }
  $("#resolve-dialog").close();
  await refresh(a.id);  // console.js: the pane as it is, not opened again
  afterResolved(a.id);  // navigation.js: focus moves on in the queue
}

// The warning that someone else holds the alert, and the take-over the resolver must tick.
function showHolder() {
  $("#rs-held-text").textContent = `${resolving.holder} has taken charge of this alert and ` +
    "may be handling it now (on the phone to the worker, or with the police).";
  $("#rs-take-over-text").textContent = `I take it over from ${resolving.holder} to resolve it`;
}

// The alert may change while the dialog is open (someone takes charge of it, or closes it):
// the dialog follows at once, rather than wait for the service to refuse.
everySecond(() => {
  if (!$("#resolve-dialog").open || !resolving.alert) return;
  const now = state.alerts.get(resolving.alert.id);
  if (!now) return;
  if (!canBecome(now, "resolved")) {
    $("#rs-next").disabled = $("#rs-confirm").disabled = true;
    $("#rs-error").textContent = "This alert has been closed meanwhile: there is nothing to resolve.";
    return;
  }
  const holder = holderOther(now);
  if (holder === resolving.holder) return;
  resolving.holder = holder;
  $("#rs-take-over").checked = false;
  $("#rs-take-over").required = Boolean(holder);
  if (holder) showHolder();
  if (!$("#rs-confirm-step").hidden) resolveStep(false); else $("#rs-held").hidden = !holder;
  $("#rs-error").textContent = holder ? `${holder} has just taken charge of this alert.` : "";
});

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
