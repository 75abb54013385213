// Vigil console: the escalation plan in the alert (its steps, what each did, the next one
// with a live countdown, why it stopped) and "Escalate now". Drawn by console.js's select()
// through drawEscalation(a), so it is fetched again whenever the alert changes.
"use strict";

const plan = { id: null, skew: 0, seq: 0 };  // skew: the service's clock minus this one's

// How long until `ms` on the service's clock: times.js's countdown, with the skew.
function until(ms) { return countdown(ms, plan.skew); }

// A wait from the policy, in words: 90 -> "1 min 30 s", 120 -> "2 min".
function wait(seconds) { return seconds ? duration(seconds).replace(/ 0\u00a0s$/, "") : "at once"; }

function whom(p, step) {
  if (step.channel === "console") return "operators";
  // Under duress the worker's phone is never rung or texted: say so before the step runs.
  const name = (r) => (p.duress && r.kind === "worker" ? `${r.name} (held back: duress)` : r.name);
  if (step.to.length) return step.to.map(name).join(", ");
  return step.nobody ? `nobody: ${step.nobody.charAt(0).toLowerCase()}${step.nobody.slice(1)}` : "nobody";
}

function stepItem(p, step) {
  const isNext = step.position === p.next;
  const li = el("li", "", `plan-step ${step.state}${isNext ? " next" : ""}`);
  li.dataset.position = step.position;
  const head = el("div", "", "plan-line");
  head.append(el("span", isNext ? "Next" : word("step", step.state), "plan-state"));
  head.append(el("strong", step.label.replace(/^step/, "Step")));
  head.append(` · ${step.word} · ${whom(p, step)}`);
  li.append(head);
  const when = el("div", "", "plan-when");
  if (step.done_at) {
    when.textContent = `${step.state === "error" ? "Failed" : "Ran"} at ${clock(step.done_at)}`;
  } else if (step.state === "pending" || step.state === "planned") {
    const due = Date.parse(step.due_at);
    when.append(`${step.state === "planned" ? "About " : "Due "}${clock(due)} `);
    const left = el("span", until(due), "countdown");
    left.dataset.due = String(due);
    when.append("(in ", left, ")");
    if (step.position > 0) when.append(` · ${wait(step.after_s)} after the step before`);
  } else {
    // Cancelled: by the duress round that replaced the pending step, or by the stop.
    when.textContent = p.duress && p.status === "running" ? "Not run: the duress round replaced it" : "Not run: the escalation stopped first";
  }
  li.append(when);
  // What it did, as the timeline said it (whom it reached, or why nobody), and each send.
  if (step.result && step.channel !== "console") li.append(el("div", step.result.replace(/^Escalation [^:]*: /, ""), "plan-result"));
  if (step.sends.length) {
    const ul = el("ul", undefined, "plan-sends");
    for (const s of step.sends) {
      const item = el("li", `${s.recipient} (${s.address}) `);
      item.append(el("span", word("status", s.status), `status ${s.status}`));
      ul.append(item);
    }
    li.append(ul);
  }
  return li;
}

function drawPlan(box, p) {
  plan.skew = Date.parse(p.now) - Date.now();
  const head = el("div", "", "plan-head");
  head.append(el("h3", "Escalation"));
  head.append(el("span", word("plan", p.status), `plan-status ${p.status}`));
  const policy = p.policy ? `policy “${p.policy}”` : p.status === "none" ? "" : "no escalation policy fits this alert: operators only";
  // Under duress the first round went out at once (the burst); what follows keeps its times.
  if (policy) head.append(el("span", `${policy}${p.duress ? " · duress: the first round went out at once" : ""}`, "note"));
  box.replaceChildren(head);

  const bar = el("div", "", "plan-next");
  const next = p.steps.find((s) => s.position === p.next);
  if (next) {
    const due = Date.parse(next.due_at);
    const text = el("span", "", "plan-next-text");
    const left = el("span", until(due), "countdown");
    left.dataset.due = String(due);
    text.append(el("strong", `Next: ${next.label.replace(/^step/, "step")}`), ` · ${next.word} · ${whom(p, next)} · in `, left);
    bar.append(text);
  } else {
    bar.append(el("span", p.why ? `${word("plan", p.status)}: ${p.why}.` : "", "plan-why"));
  }
  // The button says what it sets off: "Escalate now: SMS to Housing backup".
  const button = el("button", next ? `Escalate now: ${next.word} to ${whom(p, next)}` : "Escalate now", "escalate-now");
  button.type = "button";
  button.id = "escalate-now";
  button.disabled = !p.can_escalate_now;
  // Said beside the button, not only in a tooltip: a disabled button must say why.
  const reason = next && !p.can_escalate_now ? `${next.label.replace(/^step/, "Step")} is running now` : "";
  button.title = p.can_escalate_now ? `Run ${next.label} now rather than at its time` : (reason || p.why || "");
  button.addEventListener("click", () => {
    button.disabled = true;
    act(() => post(`/api/v1/alerts/${p.alert_id}/escalate`));  // console.js; audited in the timeline
  });
  bar.append(button);
  if (reason) bar.append(el("span", reason, "note"));
  box.append(bar);

  // While it escalates, the rounds before the next step's are folded away: the round under
  // way stays in sight however often the policy has repeated.
  const from = p.next !== null && p.round_size ? Math.floor(p.next / p.round_size) * p.round_size : 0;
  const earlier = p.steps.filter((s) => s.position < from);
  if (earlier.length) {
    const fold = el("details", undefined, "plan-earlier");
    fold.append(el("summary", `Earlier rounds: ${earlier.length} step${earlier.length === 1 ? "" : "s"}`));
    const ol = el("ol", undefined, "plan-steps");
    ol.append(...earlier.map((s) => stepItem(p, s)));
    fold.append(ol);
    box.append(fold);
  }
  const current = p.steps.filter((s) => s.position >= from);
  if (current.length) {
    const ol = el("ol", undefined, "plan-steps");
    ol.append(...current.map((s) => stepItem(p, s)));
    box.append(ol);
  }
  if (p.more) box.append(el("p", `Then ${p.more} more step${p.more === 1 ? "" : "s"} in later rounds, while nobody takes charge.`, "note"));
}

// Called by console.js's select() each time the alert is drawn (it changed, or was chosen).
async function drawEscalation(a) {
  const box = $("#d-escalation");
  if (!box) return;
  box.hidden = false;
  if (plan.id !== a.id) {  // another alert: never leave the last one's plan on screen
    plan.id = a.id;
    box.replaceChildren(el("h3", "Escalation"), el("p", "Loading the escalation plan…", "note"));
  }
  const seq = ++plan.seq;
  let p;
  try { p = await api(`/api/v1/alerts/${a.id}/escalation`); } catch (err) {
    if (seq === plan.seq && plan.id === a.id) box.replaceChildren(el("h3", "Escalation"), el("p", `The escalation plan could not be loaded: ${err.message}`, "error"));
    return;
  }
  // Only the latest answer for the alert still shown is drawn.
  if (seq !== plan.seq || plan.id !== a.id || state.selected !== a.id) return;
  drawPlan(box, p);
}

// The countdowns move every second, from the service's clock (times.js's one timer).
everySecond(() => {
  // Not connected, the plan may be out of date: its countdowns stop, never reach "0 s" on it.
  if (state.stale) return;
  for (const span of document.querySelectorAll("#d-escalation .countdown")) {
    const text = until(Number(span.dataset.due));
    if (span.textContent !== text) span.textContent = text;
    span.classList.toggle("due", text === duration(0));
  }
});
