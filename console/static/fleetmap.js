// Vigil console: every map in one place. The fleet map (the Map tab: every worker on a visit
// or an alert, live), the alert's map and the incident's, and what each says beside it: the
// position as text to copy, a link to open it in a map app, how old it is, why there is
// none, and, with no map tiles configured, a scale and a note saying so. Loaded before
// console.js: at load it touches only the page, never console.js's names.
"use strict";

// A fix older than this may no longer be where the worker is (devices report every 10 s to
// 5 min; one that moved and went quiet shows an old place).
const FIX_STALE_MS = 2 * 60 * 1000;
const FLEET_POLL_MS = 5000;
// Above this many markers, names show on hover only, so the map stays readable; below it, a
// name whose label would overlap a more pressing one's shows on hover only too.
const NAMED_MARKERS = 25;
const LABEL_BOX = { w: 150, h: 22 };  // about one label's size, in pixels
const maps = { alert: null, incident: null, fleet: null, fleetTimer: null, fleetSoon: null,
  fleetFitted: false, fleetMarkers: new Map(), fleetAlerts: new Set() };

// ---- making a map --------------------------------------------------------------------
// A map on the element `id`, with the configured tiles, or a blank background that says it
// is one, and a scale either way: without streets, distance is the only sense of place.
function makeMap(id) {
  const box = document.getElementById(id);
  const map = L.map(box, { zoomControl: true, attributionControl: true });
  const tiles = state.config?.tiles_url;
  if (tiles) L.tileLayer(tiles, { maxZoom: 19, attribution: state.config.attribution || "" }).addTo(map);
  box.classList.toggle("no-tiles", !tiles);
  L.control.scale().addTo(map);
  map.setView([51.5, -0.12], 13);
  return { map, layers: L.layerGroup().addTo(map) };
}

function tilesNote() {
  return el("p", "Map tiles are not configured, so there are no streets on this map: use the "
    + "coordinates or open them in a map app. Administrators set the tiles with "
    + "VIGIL_MAP_TILES_URL (docs/operations.md, \"Map tiles\").", "note tiles-note");
}

// ---- a position as text --------------------------------------------------------------
function coordsText(lat, lon) { return `${lat.toFixed(5)}, ${lon.toFixed(5)}`; }
// RFC 5870: any phone's or computer's map app opens it; six decimals are 0.1 m.
function geoUri(lat, lon) { return `geo:${Number(lat.toFixed(6))},${Number(lon.toFixed(6))}`; }

function fixAge(ms) {
  const text = `${since(ms)} ago`;  // times.js: said as every other "ago" on the page
  return Date.now() - ms > FIX_STALE_MS ? `${text} — may be out of date` : text;
}

// How old a fix is, kept current while it is on the page (times.js's one timer).
function fixAgeNode(ms) {
  const span = el("span", fixAge(ms), "fix-age");
  span.dataset.fixAt = String(ms);
  span.title = clock(ms, true);
  span.classList.toggle("stale", Date.now() - ms > FIX_STALE_MS);
  return span;
}
everySecond(() => {
  for (const span of document.querySelectorAll("[data-fix-at]")) {
    const ms = Number(span.dataset.fixAt);
    const text = fixAge(ms);
    if (span.textContent !== text) span.textContent = text;
    span.classList.toggle("stale", Date.now() - ms > FIX_STALE_MS);
  }
});

async function copyText(text, button, shown) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);  // only in a secure context (https, localhost)
    copied = true;
  } catch {
    const area = el("textarea", undefined, "offscreen");
    area.value = text;
    area.readOnly = true;
    document.body.append(area);
    area.select();
    try { copied = document.execCommand("copy"); } catch { copied = false; }
    area.remove();
  }
  if (!copied) window.getSelection().selectAllChildren(shown);  // for Ctrl+C
  button.textContent = copied ? "Copied" : "Press Ctrl+C to copy";
  setTimeout(() => { button.textContent = "Copy"; }, 2500);
}

// A position as the operator uses it: the coordinates, a Copy button and a `geo:` link
// labelled `openText` (the alert's summary line has room for "Open" only).
function placeControls(pos, openText) {
  const coords = el("code", coordsText(pos.lat, pos.lon), "coords");
  const copy = el("button", "Copy", "copy-coords");
  copy.type = "button";
  copy.title = "Copy the coordinates";
  copy.addEventListener("click", () => copyText(coords.textContent, copy, coords));
  const open = el("a", openText, "geo-link");
  open.href = geoUri(pos.lat, pos.lon);
  open.title = "Open in a map app";
  return [coords, pos.acc != null ? ` ±${Math.round(pos.acc)}\u00a0m ` : " ", copy, " ", open];
}

// The position's lines: coordinates, Copy, "Open in a map app", and its age (`live`) or the
// time of the fix (an incident's review).
function placeLines(pos, live) {
  const line = el("p", undefined, "place");
  line.append(...placeControls(pos, "Open in a map app"));
  const when = el("p", undefined, "fix-when");
  if (pos.at == null) when.append("Time of this fix unknown (taken by the service from the device's last report).");
  else if (live) when.append("Position from ", fixAgeNode(Date.parse(pos.at)));
  else when.append(`Position at ${clock(pos.at, true)}`);
  return [line, when];
}

const WITHHELD_TEXT = "Position withheld by the privacy rules: an operator sees a worker's "
  + "position only while their alert is active or their visit is open. It is kept in the "
  + "incident record.";
const NOT_REPORTED_TEXT = "Position unknown: the device has not reported one for this alert.";

// The Position fact of an alert's pane (console.js's hook): where, how exactly, how long ago;
// or why there is no position.
function positionFact(a) {
  const pos = a.position;
  if (!pos) return a.position_missing === "withheld" ? "withheld by the privacy rules" : "not reported by the device";
  const text = `${coordsText(pos.lat, pos.lon)}${pos.acc != null ? ` (±${Math.round(pos.acc)} m)` : ""}`;
  return pos.at && isActive(a) ? [`${text}, `, fixAgeNode(Date.parse(pos.at))] : text;
}

// ---- one alert's map, and one incident's ---------------------------------------------
// The trail, the newest position with its accuracy circle, and the lines below the map.
// `which` is "alert" (the live pane) or "incident" (the review), each with its elements.
const MAP_OF = { alert: ["map", "map-place"], incident: ["rv-map", "rv-map-place"] };

function drawPositions(which, a) {
  if (typeof L === "undefined") return;
  const [mapId, placeId] = MAP_OF[which];
  const place = document.getElementById(placeId);
  const box = document.getElementById(mapId);
  const trail = (a.trail || []).map((p) => [p.lat, p.lon]);
  const own = a.lat != null ? { lat: a.lat, lon: a.lon, acc: a.acc, at: a.device_ts || a.raised_at } : null;
  const last = a.trail?.length ? { ...a.trail[a.trail.length - 1], at: a.trail[a.trail.length - 1].device_ts } : null;
  // The live pane marks the newest fix (the service's choice); the review marks where the
  // alert was raised, its trail around it.
  const pos = which === "alert" ? a.position || own || last : own || last;
  const lines = [];
  if (pos) lines.push(...placeLines(pos, which === "alert" && isActive(a)));
  else lines.push(el("p", a.position_missing === "withheld" ? WITHHELD_TEXT : NOT_REPORTED_TEXT,
    `no-position ${a.position_missing || "not_reported"}`));
  box.hidden = !pos && trail.length === 0;
  box.dataset.points = String(trail.length + (pos ? 1 : 0));
  if (!state.config?.tiles_url && !box.hidden) lines.push(tilesNote());
  place.replaceChildren(...lines);
  if (box.hidden) return;
  if (!maps[which]) maps[which] = makeMap(mapId);
  const { map, layers } = maps[which];
  layers.clearLayers();
  if (trail.length > 1) L.polyline(trail, { color: "#1f5fbf", weight: 3, opacity: 0.7 }).addTo(layers);
  if (which === "incident") for (const p of trail) L.circleMarker(p, { radius: 3, color: "#1f5fbf" }).addTo(layers);
  const here = pos ? [pos.lat, pos.lon] : trail[trail.length - 1];
  if (pos?.acc) L.circle(here, { radius: pos.acc, color: "#c62828", weight: 1, fillOpacity: 0.15 }).addTo(layers);
  L.circleMarker(here, { radius: 7, color: "#c62828", fillColor: "#c62828", fillOpacity: 1 })
    .addTo(layers).bindTooltip(a.worker_name || a.device_id);
  setTimeout(() => {
    map.invalidateSize();
    if (which === "incident" && trail.length) map.fitBounds(L.latLngBounds([...trail, here]).pad(0.3), { maxZoom: 17 });
    else map.setView(here, Math.max(map.getZoom(), 16));
  }, 0);
}

// After the pane was hidden (another tab), Leaflet must measure it again.
function resizeMaps() {
  for (const m of [maps.alert, maps.incident, maps.fleet]) if (m) setTimeout(() => m.map.invalidateSize(), 0);
}

// ---- the fleet map -------------------------------------------------------------------
// The marker's class says its colour (console.css): an alert by its type, else the visit's.
function markerKind(m) {
  if (m.status === "alert") return m.alert.duress ? "duress" : m.alert.type;
  return m.status;
}
function markerLabel(m) {
  return m.status === "alert" ? word("type", markerKind(m)) : word("fleet", m.status);
}

function timeLeft(v) {
  const left = Math.round((Date.parse(v.due_at) - Date.now()) / 60000);
  return left >= 0 ? `${left} min left (due ${clock(v.due_at)})`
    : `overdue by ${-left} min (due ${clock(v.due_at)})`;
}

function openAlertFromMap(id) {
  show("alerts");
  select(id);
}

// What a visit's marker shows when clicked: who, where they said they would be, time left.
function visitPopup(m) {
  const box = el("div", undefined, "fm-popup");
  box.append(el("strong", m.worker_name || m.device_id));
  if (m.team) box.append(el("div", m.team));
  box.append(el("div", markerLabel(m)));
  if (m.visit) {
    box.append(el("div", m.visit.note || "(no note)"), el("div", timeLeft(m.visit), m.status === "overdue" ? "late" : ""));
  }
  if (m.lat != null) box.append(...placeLines({ lat: m.lat, lon: m.lon, acc: m.acc, at: m.fix_at }, true));
  return box;
}

function markerKey(m) { return m.worker_id ?? m.device_id; }

// Markers are kept and changed in place, one per worker, so a refresh every few seconds never
// takes a marker from under a click or closes a popup someone is reading.
function drawFleet(markers) {
  if (!maps.fleet) maps.fleet = makeMap("fm-map");
  const { layers } = maps.fleet;
  const placed = markers.filter((m) => m.lat != null);
  const wanted = new Set(placed.map(markerKey));
  for (const [key, marker] of maps.fleetMarkers) {
    if (!wanted.has(key)) { layers.removeLayer(marker); maps.fleetMarkers.delete(key); }
  }
  const before = [...maps.fleetMarkers.keys()].join(" ");
  for (const m of placed) {
    const key = markerKey(m);
    let marker = maps.fleetMarkers.get(key);
    if (!marker) {
      marker = L.circleMarker([m.lat, m.lon], { className: "fm-marker" }).addTo(layers);
      // It reads the marker's latest state, whatever it was when the marker was made.
      marker.on("click", () => { if (marker.fleet.alert) openAlertFromMap(marker.fleet.alert.id); });
      maps.fleetMarkers.set(key, marker);
    }
    showMarker(marker, m);
  }
  // Most pressing on top: drawn again in order only when the order changed, since moving a
  // marker in the page could lose a click on it.
  const order = placed.map(markerKey);
  if (order.join(" ") !== before) {
    for (const key of [...order].reverse()) maps.fleetMarkers.get(key).bringToFront();
    maps.fleetMarkers = new Map(order.map((key) => [key, maps.fleetMarkers.get(key)]));
  }
  // Fitted once when first shown; after that the view is the user's, unless a new alert
  // falls outside it: a new alarm must never be off screen.
  const bounds = maps.fleet.map.getBounds();
  const unseen = placed.some((m) => m.alert && !maps.fleetAlerts.has(m.alert.id)
    && !bounds.contains([m.lat, m.lon]));
  maps.fleetAlerts = new Set(placed.filter((m) => m.alert).map((m) => m.alert.id));
  if ((!maps.fleetFitted || unseen) && placed.length) {
    maps.fleetFitted = true;
    fitFleet();
  }
  labelMarkers();
  document.getElementById("fm-map").dataset.markers = String(placed.length);
  drawFleetList(markers);
  const notes = [];
  if (!state.config?.tiles_url) notes.push(tilesNote());
  document.getElementById("fm-notes").replaceChildren(...notes);
}

// One marker brought up to date: where, how big, its colour and pulse (console.css), its
// name, and what a click does (an alert opens; a visit shows its popup).
function showMarker(marker, m) {
  marker.fleet = m;
  const kind = markerKind(m);
  const unanswered = m.status === "alert" && m.alert.state === "raised";
  marker.setLatLng([m.lat, m.lon]);
  marker.setRadius(m.status === "alert" ? 10 : 8);
  const name = m.worker_name || m.device_id;
  const label = `${name}: ${markerLabel(m)}`;
  if (marker.label !== label) { marker.label = label; marker.unbindTooltip(); }  // labelMarkers binds it
  if (m.alert) {
    if (marker.getPopup()) marker.unbindPopup();
  } else if (!marker.getPopup()) {
    marker.bindPopup(() => visitPopup(marker.fleet));
  } else if (marker.isPopupOpen()) {
    marker.setPopupContent(visitPopup(m));
  }
  const path = marker.getElement();
  if (!path) return;
  path.setAttribute("class", `fm-marker fm-${kind}${unanswered ? " fm-unanswered" : ""} leaflet-interactive`);
  path.dataset.worker = name;
  path.dataset.status = m.status;
  if (m.alert) path.dataset.alert = String(m.alert.id); else delete path.dataset.alert;
}

// Names beside the markers, the most pressing first, each only where it overlaps no name
// already shown; the others on hover. Again after every zoom, since closeness depends on it.
function labelMarkers() {
  if (!maps.fleet) return;
  const { map } = maps.fleet;
  if (!maps.fleet.relabels) { maps.fleet.relabels = true; map.on("zoomend", labelMarkers); }
  const shown = [];
  const all = [...maps.fleetMarkers.values()].reverse();  // drawn least pressing first
  for (const mk of all) {
    const p = map.latLngToContainerPoint(mk.getLatLng());
    const free = all.length <= NAMED_MARKERS
      && !shown.some((q) => Math.abs(q.x - p.x) < LABEL_BOX.w && Math.abs(q.y - p.y) < LABEL_BOX.h);
    if (free) shown.push(p);
    const tip = mk.getTooltip();
    if (tip && tip.options.permanent === free) continue;
    mk.unbindTooltip();
    mk.bindTooltip(mk.label, { permanent: free, direction: "right", offset: [10, 0], className: "fm-label" });
  }
}

function fitFleet() {
  const { map } = maps.fleet;
  const points = [...maps.fleetMarkers.values()].map((mk) => mk.getLatLng());
  map.invalidateSize();
  if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 16 });
}

// The same people as a list: for the keyboard, for a phone's small map, and for the workers
// whose devices have not reported a position.
function drawFleetList(markers) {
  const alerts = markers.filter((m) => m.status === "alert").length;
  document.getElementById("fm-summary").textContent =
    `${markers.length} ${markers.length === 1 ? "worker" : "workers"}, ${alerts} with an active alert`;
  document.getElementById("fm-empty").hidden = markers.length > 0;
  document.getElementById("fm-list").replaceChildren(...markers.map((m) => {
    const li = el("li", undefined, `fm-item fm-${markerKind(m)}`);
    const b = el("button", undefined, "fm-open");
    b.type = "button";
    b.append(el("span", "", `fm-dot fm-${markerKind(m)}`), el("strong", markerLabel(m)), ` ${m.worker_name || m.device_id}`);
    if (m.team) b.append(el("span", ` · ${m.team}`, "note"));
    if (m.alert) {
      b.append(" · ", ago(m.alert.raised_at));
      if (m.alert.acknowledged_by) b.append(el("span", ` · taken by ${who(m.alert.acknowledged_by)}`, "note"));
      if (m.open_alerts > 1) b.append(el("span", ` · ${m.open_alerts} open alerts`, "note"));
    } else if (m.visit) {
      b.append(el("span", ` · ${m.visit.note || "(no note)"} · ${timeLeft(m.visit)}`));
    }
    if (m.lat == null) b.append(el("span", " · no position reported", "note"));
    b.addEventListener("click", () => {
      if (m.alert) { openAlertFromMap(m.alert.id); return; }
      const marker = maps.fleetMarkers.get(markerKey(m));
      if (marker) { maps.fleet.map.setView(marker.getLatLng(), Math.max(maps.fleet.map.getZoom(), 15)); marker.openPopup(); }
    });
    li.append(b);
    return li;
  }));
}

async function loadFleetMap() {
  let markers;
  try { markers = await api("/api/v1/fleet/positions"); } catch { return; }
  if (state.view !== "map") return;
  drawFleet(markers);
}

// console.js's show() calls this with the view it switches to.
function fleetMapShown(visible) {
  clearInterval(maps.fleetTimer);
  maps.fleetTimer = null;
  if (!visible) return;
  if (maps.fleet) setTimeout(() => maps.fleet.map.invalidateSize(), 0);
  loadFleetMap();
  maps.fleetTimer = setInterval(loadFleetMap, FLEET_POLL_MS);
}

// An alert changed (console.js's websocket): the map follows at once, not at the next poll;
// a burst of changes makes one request.
function fleetMapAlertChanged() {
  if (state.view !== "map" || maps.fleetSoon) return;
  maps.fleetSoon = setTimeout(() => { maps.fleetSoon = null; loadFleetMap(); }, 250);
}

document.getElementById("fm-fit").addEventListener("click", () => { if (maps.fleet) fitFleet(); });
