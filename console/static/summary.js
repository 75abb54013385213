// Vigil console: the open alert at a glance, for someone under stress. Under the title, the
// DURESS banner (if the worker keyed the duress PIN) and one line: where the alert stands and
// who holds it, how long since it was raised, where the worker is (Copy, Open in a map app),
// and the worker's phone; in the sticky actions bar, what the alert is and whose, so that
// whatever is scrolled under it the operator knows which alert Take charge acts on. Drawn by
// console.js's select() through drawSummary(a), each time the alert is drawn.
"use strict";

function summaryPart(label, ...value) {
  const part = el("span", "", "sum-part");
  part.append(el("span", `${label} `, "sum-label"), ...value);
  return part;
}

// Where the worker is: the newest fix (as the map shows it), or why there is none.
function summaryPlace(a) {
  const own = a.lat != null ? { lat: a.lat, lon: a.lon, acc: a.acc } : null;
  const pos = a.position || own;
  if (!pos) {
    return [el("span", a.position_missing === "withheld" ? "withheld by the privacy rules" : "not reported", "note")];
  }
  return placeControls(pos, "Open");  // fleetmap.js
}

function drawSummary(a) {
  const kind = word("type", kindOf(a));
  const worker = a.worker_name || a.device_id;
  // In the sticky bar: "⚠ DURESS · Solo Two", "Panic · Nia Walker".
  const bar = $("#d-bar-title");
  bar.textContent = a.duress ? `\u26a0 ${kind.toUpperCase()} \u00b7 ${worker}` : `${kind} \u00b7 ${worker}`;
  bar.className = `bar-title type-${kindOf(a)}`;

  $("#d-duress").hidden = !a.duress;

  const parts = [];
  const held = a.acknowledged_by ? ` by ${who(a.acknowledged_by)}` : "";
  const stateText = el("strong", `${word("state", a.state)}${held}`, `sum-state ${a.state}`);
  parts.push(el("span", "", "sum-part"));
  parts[0].append(stateText);
  if (a.outcome) parts[0].append(`: ${word("outcome", a.outcome)}`);
  parts.push(summaryPart("Raised", ago(a.raised_at)));  // times.js, live
  parts.push(summaryPart("Where", ...summaryPlace(a)));
  const phone = a.worker?.phone;
  if (a.duress) {
    parts.push(summaryPart("Phone", el("span", "do not call the worker (duress)", "sum-no-call")));
  } else if (phone) {
    // Plain text until calls.js knows it may be dialled (no open duress on the device); a
    // link it made stays one when only a position changed (the calls are not fetched again).
    const kept = $("#d-summary .sum-phone-number a.tel");
    const number = el("span", kept && kept.textContent === phone ? undefined : phone, "sum-phone-number");
    if (kept && kept.textContent === phone) number.append(kept);
    parts.push(summaryPart("Phone", number));
  }
  $("#d-summary").replaceChildren(...parts);
}

// The offer of desktop alerts (urgency.js) can be put away: "Not now" hides it until the
// browser's session ends.
const NOTIFY_DISMISSED = "vigil.notify-dismissed";
function notifyDismissed() {
  document.documentElement.classList.toggle("notify-dismissed", sessionStorage.getItem(NOTIFY_DISMISSED) === "1");
}
$("#notify-off").addEventListener("click", () => { sessionStorage.setItem(NOTIFY_DISMISSED, "1"); notifyDismissed(); });
notifyDismissed();
