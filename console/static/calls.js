// Vigil console: calls from the alert. The worker's and the contacts' numbers become actions:
// "Call worker" rings the operator's own phone through Twilio and, once they answer, bridges
// them (escalation/calls.py); a tel: link dials from the operator's own device instead. The
// calls placed and where each stands are shown live. Drawn by console.js's select() through
// drawCalls(a), so it is fetched again whenever the alert changes (each call's change does).
"use strict";

const calling = { id: null, seq: 0 };

const CALL_LIVE = new Set(["calling_operator", "dialling", "connected"]);

function telLink(number) {
  const a = el("a", number, "tel");
  a.href = `tel:${number.replace(/[^+0-9]/g, "")}`;
  a.title = "Dial from this device";
  return a;
}

// How long a connected call has been going since `at` ("2 min 13 s": times.js).
function talking(at) { return since(at); }

function callState(c) {
  if (c.state === "calling_operator") return c.placed_by === state.me?.username ? "Ringing your phone" : `Ringing ${c.placed_by}`;
  if (c.state === "dialling") return `Ringing ${c.to_name}`;
  return word("call", c.state);
}

function callItem(c) {
  const li = el("li", "", `call ${c.state}${CALL_LIVE.has(c.state) ? " live" : ""}`);
  li.dataset.call = c.id;
  li.append(el("time", clock(c.created_at)));
  li.append(el("span", callState(c), `call-state ${c.state}`));
  li.append(` ${c.placed_by} → ${c.to_name} (${c.to_phone})`);
  if (c.state === "connected" && c.connected_at) {
    const t = el("span", talking(c.connected_at), "call-time");
    t.dataset.since = c.connected_at;
    li.append(" · ", t);
  }
  if (c.duration_s != null) li.append(` · ${duration(c.duration_s)}`);
  // The latest change in words; once recorded, where the recording is (Audio, below).
  const said = c.evidence_id ? `Recording kept as evidence ${c.evidence_id} (see Audio)` : c.detail;
  if (said && (c.evidence_id || !CALL_LIVE.has(c.state))) li.append(el("div", said, "call-detail"));
  return li;
}

function targetItem(t, why, a) {
  const li = el("li", "", "call-target");
  li.append(el("strong", t.name));
  li.append(el("span", t.kind === "worker" ? "worker" : t.kind === "backup" ? "backup staff" : "contact", "call-role"));
  // Under duress the number is not offered even to dial by hand: the phone is with the worker.
  if (!t.refused) li.append(telLink(t.phone));
  const button = el("button", t.kind === "worker" ? "Call worker" : `Call ${t.name}`);
  button.type = "button";
  button.dataset.to = t.to;
  const reason = t.refused || why;
  button.disabled = Boolean(reason);
  if (reason) button.title = reason;
  button.addEventListener("click", () => placeCall(a, t, button));
  li.append(button);
  if (t.refused) li.append(el("p", t.refused, "call-refused"));
  return li;
}

async function placeCall(a, t, button) {
  const box = $("#d-calls");
  box.querySelector(".call-error")?.remove();
  button.disabled = true;
  try {
    await post(`/api/v1/alerts/${a.id}/calls`, { to: t.to });
  } catch (err) {
    if (err.message !== "signed out") box.append(el("p", `The call was not placed: ${err.message}`, "error call-error"));
  }
  drawCalls(a);
}

// The worker's phone among the facts, as a link to dial it from this device (not under duress).
function linkPhoneFact(a, offered) {
  const worker = offered.targets.find((t) => t.kind === "worker");
  for (const dt of document.querySelectorAll("#d-facts dt")) {
    if (dt.textContent !== "Phone" || !worker || worker.refused) continue;
    const dd = dt.nextElementSibling;
    if (dd && !dd.querySelector("a.tel")) dd.replaceChildren(telLink(dd.textContent));
  }
  // And in the summary under the title (summary.js), where the procedure's "call" is read.
  const line = document.querySelector("#d-summary .sum-phone-number");
  if (line && worker && !worker.refused && !line.querySelector("a.tel")) line.replaceChildren(telLink(line.textContent));
}

// Called by console.js's select() each time the alert is drawn (it changed, or was chosen).
async function drawCalls(a) {
  const box = $("#d-calls");
  if (!box) return;
  if (calling.id !== a.id) {  // another alert: never leave the last one's calls on screen
    calling.id = a.id;
    box.replaceChildren();
    box.hidden = true;
  }
  const seq = ++calling.seq;
  let offered;
  try { offered = await api(`/api/v1/alerts/${a.id}/calls`); } catch { return; }
  if (seq !== calling.seq || calling.id !== a.id || state.selected !== a.id) return;
  const error = box.querySelector(".call-error");
  box.hidden = false;
  box.replaceChildren(el("h3", "Calls"));
  const how = offered.why_not
    ? el("p", offered.why_not, "call-off")
    : el("p", `Your phone (${offered.operator_phone}) rings first; answer it to be connected.${offered.recording ? " Calls are recorded and kept as evidence." : ""}`, "note");
  box.append(how);
  if (offered.targets.length) {
    box.append(el("ul", undefined, "call-targets"));
    box.lastChild.append(...offered.targets.map((t) => targetItem(t, offered.why_not, a)));
  } else {
    box.append(el("p", "No phone number for the worker or the alert's contacts.", "note"));
  }
  if (offered.calls.length) {
    const ol = el("ol", undefined, "call-list");
    ol.setAttribute("aria-live", "polite");
    ol.append(...offered.calls.slice().reverse().map(callItem));
    box.append(ol);
  }
  if (error) box.append(error);
  linkPhoneFact(a, offered);
}

// A connected call's running time, on the page's one timer (times.js).
everySecond(() => {
  for (const span of document.querySelectorAll("#d-calls .call-time")) {
    const text = talking(span.dataset.since);
    if (span.textContent !== text) span.textContent = text;
  }
});
