// Vigil console, Admin tab: the procedures, the checklists operators follow in an alert.
// The file as `vigil sop` reads and writes it (admin_file.js), and the stored procedures
// listed: which alerts each is for and how many steps it has. What is valid and who may
// change it is the service's decision (monitor/procedures/files.py, views.py).
"use strict";

const proceduresAdmin = { pane: null, file: null };

adminSection({ id: "procedures", label: "Procedures", roles: ["admin", "supervisor"], open: openProcedures });

async function openProcedures(pane) {
  if (proceduresAdmin.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    proceduresAdmin.pane = pane;
    const head = el("h2", "Procedures");
    const about = el("p", "The checklist an operator follows in an alert: the one for the alert's type and the worker's team, else their organisation, else everyone. Each tick goes into the alert's timeline.", "note");
    // One file for every organisation, like the policies (docs/security.md).
    if (!serviceWide()) {
      pane.replaceChildren(head, about, el("p", "The procedures are one file for every organisation, so only accounts of the whole service read or change them.", "note"));
      return;
    }
    const list = el("section");
    list.id = "asop-list";
    const file = el("section");
    file.id = "asop-file";
    pane.replaceChildren(head, about, list, file);
    proceduresAdmin.file = fileEditor({
      box: file, prefix: "asop", title: "Procedure file", label: "Procedure file (YAML)",
      about: "The file `vigil sop load` reads: every procedure. Saving replaces them all at once, after the same checks as `vigil sop load`, the organisations and teams it names included; nothing changes if any of it is wrong. Open alerts keep the checklist they already have.",
      url: "/api/v1/procedures/file", downloadName: "vigil-procedures.yaml",
      counted: (r) => `${r.procedures} procedures`,
      onLoaded: (f) => drawProcedures(list, f.procedures),
    });
  }
  if (proceduresAdmin.file) await proceduresAdmin.file.load();
}

async function startFromShipped() {
  const shipped = await api("/api/v1/procedures/shipped");
  proceduresAdmin.file.put(shipped.yaml, "The shipped procedures are in the editor, not saved: put in your numbers, desks and emergency number, then Save.");
}

function drawProcedures(box, procedures) {
  const rows = procedures.map((p) => [
    p.name,
    p.alert_types.length ? p.alert_types.map((t) => word("type", t)).join(", ") : "Every type but duress",
    p.org || "Every organisation",
    p.team || (p.org ? "Every team" : "—"),
    String(p.steps.length),
  ]);
  const parts = [el("h3", `Stored (${procedures.length})`),
    adminTable(["Name", "For", "Organisation", "Team", "Steps"], rows,
      "No procedures are stored: operators see no checklist in an alert.")];
  if (!procedures.length) {
    parts.push(adminButton("Start from the shipped procedures", () => startFromShipped().catch((e) => adminStatus(box, e))));
  }
  box.replaceChildren(...parts);
}
