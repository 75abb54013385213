// Vigil console, Admin tab: devices of every kind (badges, phones, Traccar/OsmAnd trackers,
// OwnTracks, phone lines), for administrators and supervisors within their scope. The list
// with its filters, adding a device for a worker, disabling, enabling and a new secret (each
// confirmed first), and the phone app's enrolment with its QR code. A secret is in one answer
// only and shown once here; the service keeps no copy. What may be done is the service's
// decision (monitor/devices/admin.py): its refusal is shown beside the form or the list.
"use strict";

const devices = { pane: null, rows: [], workers: [], filter: { worker: "", kind: "" } };

adminSection({ id: "devices", label: "Devices", roles: ["admin", "supervisor"], open: openDevices });

// Added by hand, in the order they are offered; a phone line is made by the line gateway,
// and the phone app comes through its enrolment (below).
const ADDABLE_KINDS = ["badge", "owntracks", "osmand", "phone"];
const LISTED_KINDS = ["badge", "phone", "osmand", "owntracks", "line"];

async function openDevices(pane) {
  if (devices.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    devices.pane = pane;
    devices.filter = { worker: "", kind: "" };
    pane.replaceChildren(el("h2", "Devices"),
      el("p", "Every device of the workers you look after: badges, the phone app, trackers. A device's secret is shown once, when it is added or given a new one; Vigil keeps no copy. A disabled device is refused at once, by the service and by the broker.", "note"),
      devicesBox("adv-shown"), devicesBox("adv-filter"), devicesBox("adv-list"),
      devicesBox("adv-add"), devicesBox("adv-enrol"));
  }
  devices.workers = await api("/api/v1/workers");
  drawFilter();
  drawAdd();
  drawEnrol();
  await loadDevices();
}

function devicesBox(id) {
  const box = el("section");
  box.id = id;
  return box;
}

function workerOptions(blank) {
  const named = devices.workers.map((w) => [String(w.id), w.team ? `${w.name} (${w.team})` : w.name]);
  return blank ? [["", blank], ...named] : named;
}

async function loadDevices() {
  const q = new URLSearchParams();
  if (devices.filter.worker) q.set("worker_id", devices.filter.worker);
  if (devices.filter.kind) q.set("kind", devices.filter.kind);
  devices.rows = await api(`/api/v1/devices${q.size ? `?${q}` : ""}`);
  drawDevices();
}

function drawFilter() {
  const box = $("#adv-filter");
  const fields = [
    { name: "worker", label: "Worker", type: "select", options: workerOptions("Every worker"), value: devices.filter.worker },
    { name: "kind", label: "Kind", type: "select",
      options: [["", "Every kind"], ...LISTED_KINDS.map((k) => [k, word("device_kind", k)])], value: devices.filter.kind },
  ];
  const form = el("form", null, "ad-form adv-filter");
  form.setAttribute("aria-label", "Show only");
  for (const f of fields) form.append(adminField(f));
  form.addEventListener("change", () => {
    devices.filter = adminValues(form, fields);
    loadDevices().catch((err) => listSaidDevices(err));
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  box.replaceChildren(form);
}

function drawDevices() {
  const box = $("#adv-list");
  const cells = devices.rows.map((d) => {
    const acts = el("span");
    acts.append(d.enabled
      ? adminButton("Disable", () => confirmChange(d, "disable"))
      : adminButton("Enable", () => confirmChange(d, "enable")));
    if (d.kind !== "line") acts.append(adminButton("New secret", () => confirmChange(d, "rotate")));
    return [d.id, word("device_kind", d.kind), d.worker_name || "—",
      d.enabled ? "Enabled" : "Disabled", d.online ? "Online" : "Offline",
      d.last_seen_at ? ago(d.last_seen_at) : "Never", acts];
  });
  const table = adminTable(["Device", "Kind", "Worker", "State", "Connection", "Last seen", ""], cells,
    "No devices here.");
  if (table.tBodies) {
    devices.rows.forEach((d, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.device = d.id;
      tr.classList.toggle("disabled", !d.enabled);
    });
  }
  // A question being asked and what was last said stay when the list is drawn again (a
  // reload under an open "Disable?" used to take the question away under the pointer).
  const kept = box.querySelectorAll(":scope > .adv-confirm, :scope > .ad-said");
  box.replaceChildren(el("h3", `Devices (${devices.rows.length})`), table, ...kept);
}

// What a button in the list did, or why it was refused, under the list.
function listSaidDevices(outcome) {
  const box = $("#adv-list");
  let said = box.querySelector(":scope > .ad-said");
  if (!said) { said = el("div", null, "ad-said"); box.append(said); }
  adminStatus(said, outcome);
}

const CHANGES = {
  disable: { button: "Disable", ask: (d) => `Disable ${d.id}? From now on its messages are refused and the broker turns it away; an alarm from it would not reach anyone.`,
    done: (d) => `${d.id} is disabled.` },
  enable: { button: "Enable", ask: (d) => `Enable ${d.id} again, with the secret it had?`,
    done: (d) => `${d.id} is enabled again.` },
  rotate: { button: "Give a new secret", ask: (d) => `Give ${d.id} a new secret? Its present one stops working at once, until the device is set up with the new one.`,
    done: null },
};

// A change is asked for in words beside the list first: a slip should not take a worker's
// alarm out of service.
function confirmChange(d, what) {
  const change = CHANGES[what];
  const box = el("div", null, "adv-confirm");
  box.setAttribute("role", "alertdialog");
  box.setAttribute("aria-label", change.button);
  const go = adminButton(change.button, async () => {
    go.disabled = true;
    try {
      const answer = await adminSend(`/api/v1/devices/${encodeURIComponent(d.id)}/${what}`, "POST");
      box.remove();
      if (what === "rotate") showSecret(answer.credential, `New secret for ${d.id}`);
      else listSaidDevices(change.done(d));
      await loadDevices();
    } catch (err) {
      box.remove();
      listSaidDevices(err);
    }
  }, what === "enable" ? "" : "danger");
  box.append(el("p", change.ask(d)), go, adminButton("Cancel", () => box.remove()));
  $("#adv-list").querySelector(":scope > .adv-confirm")?.remove();
  $("#adv-list").append(box);
  go.focus();
}

// The credential, shown this once, with Copy buttons: what the device is set up with.
function showSecret(cred, title) {
  const box = $("#adv-shown");
  const lines = el("dl", null, "adv-secret");
  const line = (label, value) => {
    const code = el("code", value);
    const copy = el("button", "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => copyText(value, copy, code));
    const dd = el("dd");
    dd.append(code, " ", copy);
    lines.append(el("dt", label), dd);
  };
  if (cred.identifier) {
    line("Device identifier (its only credential)", cred.identifier);
    line("Server URL", cred.server_url);
    line("Traccar Client set-up link", cred.setup_link);
  } else {
    line("Username (the device id)", cred.device_id);
    line("Secret (its password)", cred.secret);
  }
  const warn = el("p", "Shown this once: Vigil keeps no copy. Set it on the device now, or store it where only its owner can read it. Anyone who has it can speak for this device; if it is lost, give the device a new secret.", "adv-warning");
  warn.setAttribute("role", "alert");
  box.replaceChildren(el("h3", title), warn, lines,
    adminButton("Done: hide it", () => box.replaceChildren()));
  box.scrollIntoView({ block: "nearest" });
  // The keyboard goes to what is to be copied now, not back to the form far below it.
  lines.querySelector("button").focus({ preventScroll: true });
}

function drawAdd() {
  const box = $("#adv-add");
  if (box.firstChild) return;  // keep what is being typed across a reload of the list
  box.append(adminForm({
    legend: "Add a device",
    submitLabel: "Add device",
    fields: [
      { name: "worker_id", label: "Worker who carries it", type: "select", options: workerOptions("Choose…"), required: true },
      { name: "kind", label: "Kind", type: "select", options: ADDABLE_KINDS.map((k) => [k, word("device_kind", k)]), value: "badge" },
      { name: "id", label: "Device id (A-Z a-z 0-9 _ -)", required: true, attrs: { maxlength: "64", autocomplete: "off", placeholder: "badge-0042" } },
      { name: "heartbeat_interval_s", label: "Heartbeat, s (empty: the default)", type: "number", attrs: { min: "10" } },
    ],
    submit: async (v, form) => {
      const made = await adminSend("/api/v1/devices", "POST", { id: v.id, kind: v.kind,
        worker_id: v.worker_id ? Number(v.worker_id) : null, heartbeat_interval_s: v.heartbeat_interval_s });
      form.reset();
      showSecret(made.credential, `${made.device.id} added for ${made.device.worker_name || "nobody"}`);
      await loadDevices();
      return `${made.device.id} added. Its secret is shown above, this once.`;
    },
  }));
}

// The phone app: a new app device and a one-time link, as a QR code the worker scans.
function drawEnrol() {
  const box = $("#adv-enrol");
  if (box.firstChild) return;
  const shown = el("div", null, "adv-enrolment");
  box.append(adminForm({
    legend: "Give a worker the phone app",
    submitLabel: "Make enrolment code",
    fields: [
      { name: "worker_id", label: "Worker", type: "select", options: workerOptions("Choose…"), required: true,
        help: "Their earlier app devices stop working." },
    ],
    submit: async (v) => {
      const made = await adminSend(`/api/v1/workers/${Number(v.worker_id)}/enrolments`, "POST");
      const w = devices.workers.find((x) => String(x.id) === v.worker_id);
      const qr = el("img", null, "ad-qr");
      qr.alt = `QR code of the phone app's enrolment link for ${w ? w.name : "the worker"}`;
      qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(made.qr_svg)}`;
      const link = el("code", made.link);
      const copy = adminButton("Copy", () => copyText(made.link, copy, link));
      shown.replaceChildren(qr,
        el("p", `Shown this once: ${w ? w.name : "the worker"} scans it with their phone's camera, or opens the link, before ${clock(made.expires_at)}. It works once.`, "adv-warning"),
        link, " ", copy);
      await loadDevices();
      return `App device ${made.device_id} made; its enrolment code is shown below.`;
    },
  }), shown);
}
