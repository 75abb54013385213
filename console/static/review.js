// Vigil console, the safety lead's review: the incident list with its filters and search,
// one incident's page (timeline, map, evidence, PDF), the reports with their charts, and
// downloads. Uses console.js's helpers ($, el, api, state) and words.js's
// (word, who): stored values are shown in the service's words, never raw. Everything
// from the service goes on the page as text (textContent), charts included.
"use strict";

const review = { who: null, offset: 0, pageSize: 50, rows: [], incident: null,
  workersLoaded: false };

// The queue's colours for each type (console.css), for the charts.
// Each kind's colour, the queue's and the map's: console.css's --k-<kind>, defined once there.
function typeColour(type) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--k-${type}`).trim() || "#888";
}
const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function seconds(s) {
  if (s === null || s === undefined) return "";
  return s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}
function when(iso) { return iso ? clock(iso, true) : ""; }  // times.js
function reviewError(text) { $("#rv-error").textContent = text || ""; }

// A date field ("2025-03-03") as the start of that day here, in UTC for the API; `end`
// gives the start of the next day, so that "To" includes the whole day.
function dayStart(value, end) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + (end ? 1 : 0)).toISOString();
}
function dateValue(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// ---- downloads: they need the bearer token, so they are fetched, then saved from a blob --
async function download(path, fallback) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (res.status === 401) { signOut("Your session has expired: please sign in again."); return null; }
  if (!res.ok) {
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
    throw new Error(typeof body?.detail === "string" ? body.detail : `download failed (${res.status})`);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "")?.[1] || fallback;
  const url = URL.createObjectURL(await res.blob());
  const a = el("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  document.body.dataset.downloaded = name;  // for the tests: what was saved last
  return name;
}

// ---- where the review is ----------------------------------------------------------------
function reviewShow(part) {
  $("#rv-incidents").hidden = part !== "incidents";
  $("#rv-incident").hidden = part !== "incident";
  $("#rv-reports").hidden = part !== "reports";
  const reports = part === "reports";
  $("#rv-tab-incidents").classList.toggle("active", !reports);
  $("#rv-tab-incidents").setAttribute("aria-pressed", String(!reports));
  $("#rv-tab-reports").classList.toggle("active", reports);
  $("#rv-tab-reports").setAttribute("aria-pressed", String(reports));
  reviewError("");
}

function openReview() {
  if (review.who !== state.me?.username) {  // another person signed in: start afresh
    review.who = state.me?.username;
    review.workersLoaded = false;
    review.offset = 0;
    $("#rv-filters").reset();
    $("#rv-period").reset();
  }
  reviewShow("incidents");
  fillFilters().then(loadIncidents);
}

$("#tab-review").addEventListener("click", () => show("review"));
$("#rv-tab-incidents").addEventListener("click", () => { reviewShow("incidents"); loadIncidents(); });
$("#rv-tab-reports").addEventListener("click", () => { reviewShow("reports"); loadReport(); });

// ---- the list ---------------------------------------------------------------------------
async function fillFilters() {
  const form = $("#rv-filters");
  if (form.elements.type.options.length === 1) {
    for (const t of state.meta.alert_types) form.elements.type.append(new Option(word("type", t.value), t.value));
    for (const o of state.meta.outcomes) form.elements.outcome.append(new Option(word("outcome", o.value), o.value));
  }
  if (review.workersLoaded) return;
  let workers;
  try { workers = await api("/api/v1/workers"); } catch { return; }
  review.workersLoaded = true;
  const teams = new Map(workers.filter((w) => w.team_id != null).map((w) => [w.team_id, w.team]));
  form.elements.team.replaceChildren(new Option("Any", ""),
    ...[...teams].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => new Option(name, id)));
  form.elements.worker.replaceChildren(new Option("Any", ""),
    ...workers.map((w) => new Option(w.name, w.id)));
}

function filterQuery() {
  const f = $("#rv-filters").elements;
  const q = new URLSearchParams();
  if (f.since.value) q.set("since", dayStart(f.since.value, false));
  if (f.until.value) q.set("until", dayStart(f.until.value, true));
  for (const name of ["team", "worker", "type", "outcome", "duress"]) if (f[name].value) q.set(name, f[name].value);
  if (f.q.value.trim()) q.set("q", f.q.value.trim());
  return q;
}

async function loadIncidents() {
  const q = filterQuery();
  q.set("limit", review.pageSize);
  q.set("offset", review.offset);
  let rows;
  try { rows = await api(`/api/v1/incidents?${q}`); } catch (err) {
    if (err.message !== "signed out") reviewError(err.message);
    return;
  }
  review.rows = rows;
  $("#incidents tbody").replaceChildren(...rows.map((a) => {
    const tr = el("tr");
    tr.dataset.id = a.id;
    tr.tabIndex = 0;
    const cells = [when(a.raised_at), a.duress ? `${word("type", a.type)} (duress)` : word("type", a.type),
      a.worker_name || a.device_id, a.team || "", word("state", a.state), word("outcome", a.outcome),
      seconds(a.time_to_acknowledge_s), seconds(a.time_to_resolve_s)];
    cells.forEach((text, i) => tr.append(el("td", text, i === 1 ? `type type-${a.duress ? "duress" : a.type}` : undefined)));
    return tr;
  }));
  $("#rv-empty").hidden = rows.length > 0;
  $("#rv-newer").disabled = review.offset === 0;
  $("#rv-older").disabled = rows.length < review.pageSize;
  $("#rv-page").textContent = rows.length ? `${review.offset + 1} to ${review.offset + rows.length}` : "";
}

$("#rv-filters").addEventListener("submit", (e) => { e.preventDefault(); review.offset = 0; reviewError(""); loadIncidents(); });
$("#rv-newer").addEventListener("click", () => { review.offset = Math.max(0, review.offset - review.pageSize); loadIncidents(); });
$("#rv-older").addEventListener("click", () => { review.offset += review.pageSize; loadIncidents(); });
$("#rv-csv").addEventListener("click", async () => {
  reviewError("");
  try { await download(`/api/v1/incidents/export.csv?${filterQuery()}`, "vigil-incidents.csv"); } catch (err) { reviewError(err.message); }
});
$("#incidents tbody").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr) openIncident(Number(tr.dataset.id));
});
$("#incidents tbody").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); openIncident(Number(tr.dataset.id)); }
});

// ---- one incident -----------------------------------------------------------------------
async function openIncident(id) {
  let a;
  try { a = await api(`/api/v1/alerts/${id}`); } catch (err) {
    if (err.message !== "signed out") reviewError(err.message);
    return;
  }
  review.incident = a;
  reviewShow("incident");
  const listed = review.rows.find((r) => r.id === id) || {};
  $("#rv-title").textContent = `#${a.id} ${word("type", a.type)}: ${a.worker_name || a.device_id}`;
  const facts = [["Worker", a.worker_name || ""], ["Team", a.team || ""],
    ["Duress", a.duress ? "yes: the duress PIN was keyed" : "no"],
    ["Device", `${a.device_id}${a.battery != null ? ` (battery ${a.battery}%)` : ""}`],
    ["Device time", when(a.device_ts)], ["Received", when(a.raised_at)],
    ["Taken charge", a.acknowledged_at ? `${when(a.acknowledged_at)} by ${who(a.acknowledged_by)}` : ""],
    ["To take charge", seconds(listed.time_to_acknowledge_s)],
    ["Resolved", a.resolved_at ? `${when(a.resolved_at)} by ${who(a.resolved_by)}` : ""],
    ["To resolve", seconds(listed.time_to_resolve_s)],
    ["Cancelled", when(a.cancelled_at)], ["State", word("state", a.state)], ["Outcome", word("outcome", a.outcome)],
    ["Position", a.lat != null ? `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)} (±${a.acc ?? "?"} m)` : ""],
    ["Visit", a.visit ? a.visit.note || "(no note)" : ""], ["Worker's note", a.note || ""],
    ["On hold", a.hold ? `since ${when(a.held_at)} by ${who(a.held_by)}: ${a.hold_reason || ""}` : ""]];
  $("#rv-facts").replaceChildren(...facts.filter(([, v]) => v !== "").flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  drawIncidentMap(a);
  $("#rv-evidence").replaceChildren(...(a.evidence.length ? a.evidence.map((ev) => {
    const li = el("li");
    li.append(el("strong", ev.evidence_id), ` ${ev.kind || ""} ${ev.duration_ms ? `${(ev.duration_ms / 1000).toFixed(1)} s` : ""}`,
      el("code", ev.sha256 ? `sha256 ${ev.sha256}` : "sha256 not declared yet", "hash"));
    if (ev.purged_at) {
      li.append(el("span", `audio deleted ${when(ev.purged_at)} under the retention policy`, "note"));
    } else if (ev.uploaded_at) {
      // Fetched only when asked for: each playback is on the record (console.js).
      const listen = el("button", "Listen");
      listen.type = "button";
      listen.addEventListener("click", async () => {
        try {
          const audio = el("audio");
          audio.controls = true;
          audio.src = await fetchClip(ev);
          listen.replaceWith(audio);
        } catch (err) { reviewError(err.message); }
      });
      li.append(" ", listen);
    }
    return li;
  }) : [el("li", "No evidence was recorded.", "note")]));
  $("#rv-timeline").replaceChildren(...a.timeline.map((t) => {
    const li = el("li");
    li.value = t.seq;
    li.dataset.kind = t.kind;
    li.append(el("time", clock(t.at, true)), el("span", word("entry", t.kind), "kind"),
      `${t.text || word("entry", t.kind)} (${who(t.actor)})`, el("code", t.hash, "hash"));
    return li;
  }));
  drawIncidentProcedure(a);  // procedures.js
  drawIncidentCaution(a);  // cautions.js
  const head = a.timeline[a.timeline.length - 1];
  $("#rv-head").textContent = head ? `Head of the hash chain: entry ${head.seq}, ${head.hash}` : "";
}

// The incident's trail and where the alert was raised: fleetmap.js, with every other map.
function drawIncidentMap(a) { drawPositions("incident", a); }

$("#rv-back").addEventListener("click", () => reviewShow("incidents"));
$("#rv-pdf").addEventListener("click", async () => {
  reviewError("");
  const id = review.incident?.id;
  if (id) try { await download(`/api/v1/incidents/${id}/report.pdf`, `vigil-incident-${id}.pdf`); } catch (err) { reviewError(err.message); }
});

// ---- reports ----------------------------------------------------------------------------
async function loadReport() {
  const f = $("#rv-period").elements;
  if (!f.since.value && !f.until.value) {  // the last twelve weeks, today included
    const today = new Date();
    f.until.value = dateValue(today);
    f.since.value = dateValue(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 83));
  }
  const q = new URLSearchParams();
  if (f.since.value) q.set("since", dayStart(f.since.value, false));
  if (f.until.value) q.set("until", dayStart(f.until.value, true));
  let rep;
  try { rep = await api(`/api/v1/reports?${q}`); } catch (err) {
    if (err.message !== "signed out") reviewError(err.message);
    return;
  }
  drawCards(rep);
  drawWeeks(rep);
  drawTargets(rep.acknowledge.targets);
  drawBattery(rep.low_battery);
  $("#rv-stale-title").textContent = `Devices with no test alert in ${rep.stale_test_devices.days} days`;
  const stale = rep.stale_test_devices.devices;
  $("#rv-stale tbody").replaceChildren(...(stale.length ? stale.map((d) => {
    const tr = el("tr");
    for (const text of [d.device_id, d.worker_name || "", d.last_test_at ? when(d.last_test_at) : "never"]) tr.append(el("td", text));
    return tr;
  }) : [(() => { const tr = el("tr"); const td = el("td", "Every device has been tested.", "note"); td.colSpan = 3; tr.append(td); return tr; })()]));
}
$("#rv-period").addEventListener("submit", (e) => { e.preventDefault(); reviewError(""); loadReport(); });

function card(box, title, lines) {
  box.replaceChildren(el("h4", title), ...lines.map(([k, v]) => {
    const p = el("p");
    p.append(el("span", k, "note"), " ", el("strong", v));
    return p;
  }));
}

function drawCards(rep) {
  const fa = rep.false_alarms;
  card($("#rv-card-false"), "False alarms", [
    ["Rate", fa.rate === null ? "no alert resolved" : `${(fa.rate * 100).toFixed(1)} %`],
    ["Of resolved", `${fa.false_alarms} of ${fa.resolved}`]]);
  const ack = rep.acknowledge;
  card($("#rv-card-ack"), "Time to take charge", [["Median (p50)", seconds(ack.p50_s) || "–"],
    ["p90", seconds(ack.p90_s) || "–"], ["Longest", seconds(ack.max_s) || "–"],
    ["Alerts", `${ack.count} answered, ${ack.waiting} waiting`]]);
  const res = rep.resolve;
  card($("#rv-card-resolve"), "Time to resolve", [["Median (p50)", seconds(res.p50_s) || "–"],
    ["p90", seconds(res.p90_s) || "–"], ["Longest", seconds(res.max_s) || "–"],
    ["Alerts", `${res.count} resolved`]]);
}

function niceMax(n) {
  if (n <= 5) return Math.max(1, n);
  const step = 10 ** Math.floor(Math.log10(n));
  return Math.ceil(n / step) * step;
}

function drawWeeks(rep) {
  const box = $("#chart-weeks");
  const weeks = rep.weeks;
  if (!weeks.length) { box.replaceChildren(el("p", "No alerts in this period.", "note")); box.dataset.bars = "0"; return; }
  const W = 760, H = 240, left = 40, bottom = 36, top = 10;
  const plotW = W - left - 10, plotH = H - bottom - top;
  const max = niceMax(Math.max(...weeks.map((w) => w.total)));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Alerts per week, by type" });
  for (const tick of [0, max / 2, max]) {
    const y = top + plotH - (tick / max) * plotH;
    svg.append(svgEl("line", { x1: left, x2: W - 10, y1: y, y2: y, class: "grid" }),
      svgEl("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(Math.round(tick * 10) / 10)));
  }
  const slot = plotW / weeks.length, barW = Math.max(2, slot * 0.7);
  const every = Math.ceil(weeks.length / 16);  // labels that do not overlap
  let bars = 0;
  weeks.forEach((w, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let y = top + plotH;
    for (const type of rep.types) {
      const n = w.by_type[type] || 0;
      if (!n) continue;
      const h = (n / max) * plotH;
      y -= h;
      const rect = svgEl("rect", { x, y, width: barW, height: h, fill: typeColour(type), class: "bar" });
      rect.append(svgEl("title", {}, `${w.week}: ${n} ${word("type", type)}`));
      svg.append(rect);
      bars += 1;
    }
    if (i % every === 0) {
      svg.append(svgEl("text", { x: x + barW / 2, y: H - bottom + 16, "text-anchor": "middle", class: "axis" }, w.week.slice(5)));
    }
  });
  const legend = el("ul", undefined, "legend");
  for (const type of rep.types) {
    const li = el("li");
    const swatch = el("span", undefined, "swatch");
    swatch.style.background = typeColour(type);
    li.append(swatch, word("type", type));
    legend.append(li);
  }
  box.replaceChildren(svg, legend);
  box.dataset.bars = String(bars);
}

function drawTargets(targets) {
  const box = $("#chart-targets");
  const W = 760, rowH = 34, left = 120, right = 250, H = targets.length * rowH + 24;
  const scale = (pct) => left + (pct / 100) * (W - left - right);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Share taken charge of within each target" });
  for (const pct of [0, 50, 100]) {
    svg.append(svgEl("line", { x1: scale(pct), x2: scale(pct), y1: 0, y2: H - 18, class: "grid" }),
      svgEl("text", { x: scale(pct), y: H - 4, "text-anchor": "middle", class: "axis" }, `${pct} %`));
  }
  targets.forEach((t, i) => {
    const y = i * rowH + 6;
    svg.append(svgEl("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, `within ${t.within_s} s`));
    const share = t.share_pct ?? 0;
    const bar = svgEl("rect", { x: left, y, width: scale(share) - left, height: 20,
      class: t.met === null ? "bar none" : t.met ? "bar met" : "bar missed" });
    bar.append(svgEl("title", {}, `${t.within} of ${t.counted}`));
    svg.append(bar, svgEl("line", { x1: scale(t.target_pct), x2: scale(t.target_pct), y1: y - 3, y2: y + 23, class: "target" }));
    const verdict = t.met === null ? "no alerts" : `${share.toFixed(1)} % (target ${t.target_pct} %): ${t.met ? "met" : "not met"}`;
    svg.append(svgEl("text", { x: W - right + 8, y: y + 15, class: t.met === false ? "missed" : "" }, verdict));
  });
  box.replaceChildren(svg);
  box.dataset.targets = targets.map((t) => (t.met === null ? "none" : t.met ? "met" : "missed")).join(" ");
}

function drawBattery(rows) {
  const box = $("#chart-battery");
  if (!rows.length) { box.replaceChildren(el("p", "No low-battery warnings in this period.", "note")); box.dataset.bars = "0"; return; }
  const W = 760, rowH = 24, left = 200, H = rows.length * rowH + 8;
  const max = Math.max(...rows.map((r) => r.warnings));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Low-battery warnings per worker" });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const width = (r.warnings / max) * (W - left - 60);
    svg.append(svgEl("text", { x: left - 8, y: y + 13, "text-anchor": "end" }, `${r.worker_name || `worker ${r.worker_id}`}${r.team ? ` (${r.team})` : ""}`));
    const bar = svgEl("rect", { x: left, y, width, height: 16, class: "bar battery" });
    bar.append(svgEl("title", {}, `last on ${when(r.last_at)}`));
    svg.append(bar, svgEl("text", { x: left + width + 6, y: y + 13 }, String(r.warnings)));
  });
  box.replaceChildren(svg);
  box.dataset.bars = String(rows.length);
}
