// Vigil console: urgency an operator cannot miss. Each row's look follows its priority and how
// long it has waited against the response targets (VIGIL_ACK_TARGETS); a worker's open alerts
// are one group led by the one that needs a person most; an alarm sounds, again and again,
// until someone takes charge (a harsher one for duress), unless this operator silenced that
// alert for a while; the page's title counts what is unanswered; and, while the page is
// hidden, the desktop shows each new alarm. The service says which alerts sound
// (alerts.rules.sounds_alarm): raised, not a quiet type (a test), or under duress.
"use strict";

const urgency = {
  // "id/kind": until when (ms) this console does not sound for the alert as it was silenced.
  // A silenced panic that becomes a duress (raised again, or the PIN before anyone took it)
  // is another key: the duress sounds.
  silenced: new Map(),
  heard: new Set(),     // "id/kind" of every alarm sounded: a new one sounds at once
  lastPlay: 0,
  title: null,
  openGroup: null,      // the group shown whole under its lead: the selected alert's
};

// Whether the alert sounds and flashes: nobody has taken charge, and it is not quiet.
function sounds(a) {
  return canBecome(a, "acknowledged")
    && !(state.meta.quiet_types.includes(a.type) && !a.duress);
}
const silenceKey = (a) => `${a.id}/${kindOf(a)}`;
function silencedNow(a, now = Date.now()) { return (urgency.silenced.get(silenceKey(a)) || 0) > now; }

// ---- rows: grouped by worker, marked by kind and by age -------------------------------

function groupOf(a) { return a.worker_id != null ? `w${a.worker_id}` : `d${a.device_id}`; }

// Active alerts in the queue's one order (order.js, queueOrder), grouped: a group takes the
// place of its first alert, and within it the same order holds, so the row that stands for
// the worker is the one that needs someone now. Returns [alert, lead, n]: the lead of its group (itself for a lead),
// and for a lead how many the group holds.
function grouped(sorted) {
  const groups = new Map();
  for (const a of sorted) {
    const key = groupOf(a);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const out = [];
  for (const members of groups.values()) {
    members.sort(queueOrder);
    const lead = members[0];
    members.forEach((a, i) => out.push([a, lead, i === 0 ? members.length : 0]));
  }
  return out;
}
function isTaken(a) { return !canBecome(a, "acknowledged"); }

// What drawQueue found for the row: its group's lead, and whether it leads (with its count).
function placeRow(tr, a, lead, n) {
  const follower = lead.id !== a.id;
  tr.group = groupOf(a);
  if (tr.follower !== follower) { tr.follower = follower; tr.classList.toggle("follower", follower); }
  const more = n > 1 ? `+${n - 1}` : "";
  const cell = tr.cells[1];
  if ((cell.dataset.more || "") !== more) {
    if (more) {
      cell.dataset.more = more;
      cell.title = `${n - 1} more open alert${n > 2 ? "s" : ""} of this worker: open this one to see them`;
    } else { delete cell.dataset.more; cell.removeAttribute("title"); }
  }
  // A lead of several says whether its group is open; any other row says nothing.
  const expanded = n > 1 ? String(urgency.openGroup === tr.group) : null;
  if (tr.getAttribute("aria-expanded") !== expanded) {
    if (expanded === null) tr.removeAttribute("aria-expanded"); else tr.setAttribute("aria-expanded", expanded);
  }
  showFollower(tr);
}

// A follower shows only while its group is open (its lead or one of it selected).
function showFollower(tr) {
  const hidden = tr.follower && urgency.openGroup !== tr.group;
  if (tr.hidden !== hidden) tr.hidden = hidden;
}

// After each redraw: the selected alert's group opens, and the one open before closes.
function openSelectedGroup() {
  const a = state.alerts.get(state.selected);
  const key = a && isActive(a) ? groupOf(a) : null;
  if (key === urgency.openGroup) return;
  urgency.openGroup = key;
  for (const tr of rowsById.values()) {
    showFollower(tr);
    if (tr.hasAttribute("aria-expanded")) tr.setAttribute("aria-expanded", String(tr.group === key));
  }
}

// A row's look: its kind (colour, by priority), whether it flashes (it sounds), whether
// someone has it. Classes are touched only when they change.
function markRow(tr, a) {
  const kind = `k-${kindOf(a)}`;
  if (tr.kind !== kind) {
    if (tr.kind) tr.classList.remove(tr.kind);
    tr.classList.add(kind);
    tr.kind = kind;
  }
  const loud = sounds(a);
  tr.classList.toggle("flash", loud);
  tr.classList.toggle("taken", isTaken(a));
  tr.classList.toggle("silenced", loud && silencedNow(a));
  // Only what sounds ages against the targets: not a taken alert, not a test.
  tr.waiting = loud;
  lateness(tr);
}

// How late the row is against the response targets: past the first, amber; past the second,
// red; said in words after its age. Only for an alert that sounds. Called by the queue's one
// ticker (ageOf), and the classes change only when the level does.
function lateness(tr) {
  const targets = state.meta?.ack_target_s || [];
  let level = 0;
  if (tr.waiting) {
    const waited = (Date.now() - tr.raisedMs) / 1000;
    while (level < targets.length && waited >= targets[level]) level++;
  }
  if (tr.late !== level) {
    tr.classList.toggle("late-1", level === 1);
    tr.classList.toggle("late-2", level >= 2);
    tr.late = level;
  }
  return level ? ` · over ${targetText(targets[level - 1])}` : "";
}
// No break inside "40 s": the age cell is narrow at phone width.
function targetText(s) { return s < 120 ? `${s}\u00a0s` : `${Math.round(s / 60)}\u00a0min`; }

// ---- the alarm ------------------------------------------------------------------------

// Once a second (and at once when the queue changes): sound if anything sounds and is not
// silenced here, at once for an alarm not heard before, else every alarm_repeat_s; keep the
// title and the rows' silenced marks current.
function alarm(now = Date.now()) {
  if (!state.meta || !state.token) { showTitle(0); return; }
  let count = 0, top = null, loud = [];
  for (const a of state.alerts.values()) {
    if (!isActive(a) || !sounds(a)) continue;
    count++;
    if (!top || a.priority < top.priority) top = a;
    if (!silencedNow(a, now)) loud.push(a);
  }
  showTitle(count, top);
  for (const [key, until] of urgency.silenced) {
    if (until > now) continue;
    urgency.silenced.delete(key);
    const id = Number(key.split("/")[0]);
    const tr = rowsById.get(id);
    if (tr) tr.classList.remove("silenced");
    if (state.selected === id) drawSilence(state.alerts.get(id));
  }
  if (!loud.length) return;
  const fresh = loud.filter((a) => !urgency.heard.has(`${a.id}/${kindOf(a)}`));
  for (const a of fresh) { urgency.heard.add(`${a.id}/${kindOf(a)}`); notify(a); }
  // Within half a tick of the interval: the one-second timer would otherwise make it longer.
  if (!fresh.length && now - urgency.lastPlay < state.meta.alarm_repeat_s * 1000 - 500) return;
  urgency.lastPlay = now;
  const duress = loud.some((a) => kindOf(a) === "duress");
  play(duress ? $("#duress-alarm") : $("#chime"));
}

function play(audio) {
  audio.currentTime = 0;
  audio.play().then(() => { $("#sound-banner").hidden = true; }).catch((err) => {
    // The browser refuses sound until the operator has used the page (a reload with a kept
    // session): say so, loudly, rather than stay silent.
    if (err?.name === "NotAllowedError") $("#sound-banner").hidden = false;
  });
}

$("#sound-on").addEventListener("click", () => {
  // The click is the permission: sound what sounds now, or unlock the sound for later.
  $("#sound-banner").hidden = true;
  urgency.lastPlay = 0;
  alarm();
  if (urgency.lastPlay === 0) {
    const a = $("#chime");
    a.muted = true;
    a.play().then(() => { a.pause(); a.muted = false; }).catch(() => { a.muted = false; });
  }
});

// Not connected, the count may be out of date: the title says so first (connection.js).
function showTitle(count, top) {
  urgency.shown = [count, top];
  const title = (state.stale ? "OFFLINE · " : "")
    + (count ? `(${count}) ${word("type", kindOf(top)).toUpperCase()} · Vigil` : "Vigil console");
  if (title !== urgency.title) { document.title = title; urgency.title = title; }
}

// ---- silencing one alert on this console ---------------------------------------------

// The detail pane's control: shown for an alert that sounds; says until when it is silenced.
function drawSilence(a) {
  const box = $("#silence-form");
  box.hidden = !a || !sounds(a);
  if (box.hidden) return;
  const until = urgency.silenced.get(silenceKey(a));
  const silent = silencedNow(a);
  $("#silence-state").textContent = silent
    ? `Sound off here until ${clock(until)}; the row still flashes`
    : "";
  $("#silence-form button").disabled = silent;
}

$("#silence-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = state.selected, minutes = Number($("#silence-minutes").value);
  const a = state.alerts.get(id);  // as it is now: its kind is part of what is silenced
  act(async () => {
    await post(`/api/v1/alerts/${id}/silence`, { minutes });
    urgency.silenced.set(silenceKey(a), Date.now() + minutes * 60000);
    $("#chime").pause(); $("#duress-alarm").pause();
    rowsById.get(id)?.classList.add("silenced");
  });
});

// ---- desktop notifications -------------------------------------------------------------

// Asked for only when the operator presses the button, never on load (browsers refuse, or
// annoy, a request nobody asked for).
function offerNotifications() {
  $("#notify-banner").hidden = !("Notification" in window) || Notification.permission !== "default";
}
$("#notify-on").addEventListener("click", async () => {
  try { await Notification.requestPermission(); } catch { /* an old browser: no promise */ }
  offerNotifications();
});

// A new alarm while the page is hidden (another tab, another window in front).
function notify(a) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(`${word("type", kindOf(a))}: ${a.worker_name || a.device_id}`, {
    body: "Nobody has taken charge yet.",
    tag: `vigil-alert-${a.id}`,
    requireInteraction: kindOf(a) === "duress",
  });
  n.onclick = () => { window.focus(); show("alerts"); select(a.id); n.close(); };
}

everySecond(() => alarm());
