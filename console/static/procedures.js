// Vigil console: the alert's standard operating procedure, a checklist in the detail pane.
// Drawn by console.js's select() through drawProcedure(a), so it is fetched again whenever
// the alert changes (another operator's tick included). Each tick is written by the service
// into the alert's timeline with who and when; resolving with steps unticked asks for the
// reason in the resolution note (resolve.js's resolveChecks).
"use strict";

const sop = { id: null, seq: 0, checklist: null, placeholder: $("#resolve-note").placeholder };

function sopStepItem(c, s) {
  const li = el("li", "", `sop-step${s.done ? " done" : ""}`);
  const label = el("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = s.done;
  box.disabled = !c.active;
  box.dataset.step = String(s.index);
  box.addEventListener("change", () => sopTick(c.alert_id, s.index, box));
  const words = el("span", "", "sop-words");
  words.append(el("span", s.do, "sop-do"));
  if (s.detail) words.append(el("span", s.detail, "sop-detail"));
  if (s.done && s.by) {
    words.append(el("span", `Done by ${who(s.by)} at ${clock(s.at)}`, "sop-by"));
  }
  label.append(box, words);
  li.append(label);
  return li;
}

// The checklist in `box`: the alert's, to tick, or (review) an incident's, as it was left.
function sopShow(c, box = $("#d-procedure")) {
  if (box.id === "d-procedure") sop.checklist = c;
  if (!c || c.seq === null) { box.hidden = true; box.replaceChildren(); return; }
  const done = c.steps.filter((s) => s.done).length;
  const head = el("h3", "", "sop-head");
  head.append(el("span", c.name ? `Procedure: ${c.name}` : `No procedure for ${word("type", c.kind)}`));
  if (c.steps.length) head.append(el("span", `${done} of ${c.steps.length} done`, done === c.steps.length ? "sop-count all" : "sop-count"));
  // On a phone the steps' details are folded (console.css), but for the next step to do: a
  // button unfolds them all. Elsewhere the button is not shown.
  if (c.steps.some((s) => s.detail)) {
    const fold = el("button", "How to do each step", "sop-fold");
    fold.type = "button";
    fold.setAttribute("aria-expanded", String(box.classList.contains("show-details")));
    fold.addEventListener("click", () => {
      const open = box.classList.toggle("show-details");
      fold.setAttribute("aria-expanded", String(open));
      fold.textContent = open ? "Fold the details" : "How to do each step";
    });
    if (box.classList.contains("show-details")) fold.textContent = "Fold the details";
    head.append(fold);
  }
  const parts = [head];
  if (!c.name) {
    parts.push(el("p", "The worker keyed the duress PIN: the earlier checklist no longer applies, and none is stored for duress.", "sop-void"));
  }
  if (c.steps.length) parts.push(el("ol", "", "sop-steps"));
  box.replaceChildren(...parts);
  box.querySelector(".sop-steps")?.append(...c.steps.map((s) => sopStepItem(c, s)));
  box.querySelector(".sop-step:not(.done)")?.classList.add("current");
  box.classList.toggle("duress", c.kind === "duress");
  box.hidden = false;
}

async function drawProcedure(a) {
  const mine = ++sop.seq;
  if (sop.id !== a.id) { sop.id = a.id; sopShow(null); }
  let c;
  try { c = await api(`/api/v1/alerts/${a.id}/procedure`); } catch { return; }
  if (mine !== sop.seq || state.selected !== a.id) return;
  sopShow(c);
}

// The incident's review (review.js): the checklist as the timeline recorded it, read only.
async function drawIncidentProcedure(a) {
  const box = $("#rv-procedure");
  box.hidden = true;
  let c;
  try { c = await api(`/api/v1/alerts/${a.id}/procedure`); } catch { return; }
  if (review.incident?.id !== a.id) return;
  sopShow({ ...c, active: false }, box);
}

async function sopTick(alertId, index, box) {
  $("#action-error").textContent = "";
  box.disabled = true;
  try {
    const c = await api(`/api/v1/alerts/${alertId}/procedure/steps/${index}`, { method: "PUT",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ done: box.checked }) });
    sop.seq++;  // newer than any fetch under way
    if (state.selected === alertId) sopShow(c);
    // The timeline shows the tick once the alert's update arrives over the websocket.
  } catch (err) {
    box.checked = !box.checked;
    box.disabled = false;
    if (err.message !== "signed out") $("#action-error").textContent = err.message;
  }
}

// Resolving with steps unticked: the dialog says which, and the note must say why (the
// service refuses the resolve without one, 409, and records the reason with the steps).
function sopUnticked() {
  const c = sop.checklist;
  return c && c.alert_id === state.selected ? c.steps.filter((s) => !s.done) : [];
}

resolveChecks.push({
  open(a, box) {
    const left = sopUnticked();
    $("#resolve-note").placeholder = sop.placeholder;
    if (!left.length) return;
    box.className = "sop-unticked";
    box.setAttribute("role", "alert");
    const n = left.length;
    box.append(el("p", `${n} step${n > 1 ? "s" : ""} of the procedure ${n > 1 ? "are" : "is"} not ticked. Say why in the resolution note:`));
    const ul = el("ul");
    ul.append(...left.map((s) => el("li", s.do)));
    box.append(ul);
    $("#resolve-note").placeholder = "Why the steps listed below were not done, what happened and what was done";
  },
  summary() {
    const left = sopUnticked();
    return left.length ? [["Steps not ticked", left.map((s) => s.do).join("; ")]] : [];
  },
  body() { return {}; },  // the reason is the note itself
});
