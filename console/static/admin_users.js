// Vigil console, Admin tab: the people who use the console and the API (administrators and
// supervisors, each within their scope). The list, adding someone, changing an account's role,
// scope, name and phone, disabling and enabling it, and setting its password. Who may do what
// to whom is the service's decision (monitor/users/accounts.py): its refusal is shown beside
// the form (admin.js), and what people typed goes on the page as text only.
"use strict";

const users = { pane: null, rows: [], scopes: [], roles: new Set(), editing: null };

adminSection({ id: "users", label: "Users", roles: ["admin", "supervisor"], open: openUsers });

async function openUsers(pane) {
  if (users.pane !== pane) {  // a new sign-in builds the panes afresh (admin.js)
    users.pane = pane;
    users.editing = null;
    pane.replaceChildren(el("h2", "Users"),
      el("p", "Administrators manage every account within their organisation or team. Supervisors manage operators within theirs, and supervisors of a narrower scope (a team of their organisation); never an administrator. Nobody can disable their own account, or the last administrator of the whole service.", "note"),
      usersBox("au-list"), usersBox("au-edit"), usersBox("au-add"));
  }
  await loadUsers();
}

function usersBox(id) {
  const box = el("section");
  box.id = id;
  return box;
}

function usersScopeText(org, team) {
  if (!org) return "Whole service";
  return team ? `${org} · ${team}` : org;
}

// The scopes this person may give, from the service (/users/choices), plus `also` (the scope an
// account has now, so its form shows it even where it could not be given again).
function usersScopeOptions(also) {
  const seen = new Map();
  for (const s of [...users.scopes, ...(also ? [also] : [])]) {
    seen.set(JSON.stringify([s.org, s.team]), usersScopeText(s.org, s.team));
  }
  return [...seen];
}

// The roles this person may give (from /users/choices: a team's supervisor, only operators),
// plus `also`, the role an account has now.
function usersRoleOptions(also) {
  return ["operator", "supervisor", "admin"].filter((r) => users.roles.has(r) || r === also)
    .map((r) => [r, word("role", r)]);
}

// A box of the section's pane (not of the document: the pane is built afresh at a sign-in).
function usersPart(id) { return users.pane.querySelector(`#${id}`); }

async function loadUsers() {
  const pane = users.pane;
  const [rows, choices] = await Promise.all([api("/api/v1/users"), api("/api/v1/users/choices")]);
  if (pane !== users.pane) return;  // built afresh meanwhile: that load draws it
  users.rows = rows;
  users.scopes = choices.map((c) => ({ org: c.org, team: c.team }));
  users.roles = new Set(choices.map((c) => c.role));
  usersDrawList();
  usersDrawAdd();
  // The open forms keep what they say; an account no longer listed closes them.
  if (users.editing !== null && !rows.some((r) => r.id === users.editing)) usersCloseEdit();
}

function usersDrawList() {
  const box = usersPart("au-list");
  const cells = users.rows.map((u) => {
    const acts = el("span");
    acts.append(adminButton("Change", () => usersDrawEdit(u)));
    // Nobody disables their own account (the service refuses it): no button for it.
    if (u.username !== state.me.username) {
      acts.append(u.active
        ? adminButton("Disable", () => usersAskDisable(u, acts))
        : adminButton("Enable", () => usersSetActive(u, true)));
    }
    return [u.username, u.full_name, word("role", u.role), usersScopeText(u.org, u.team),
      u.phone || "—", u.active ? "Active" : "Disabled", acts];
  });
  const table = adminTable(["Username", "Name", "Role", "Sees", "Phone", "State", ""], cells,
    "No accounts within your scope.");
  if (table.tBodies) {
    users.rows.forEach((u, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.username = u.username;
      tr.classList.toggle("disabled", !u.active);
    });
  }
  const said = box.querySelector(":scope > .ad-said");
  box.replaceChildren(el("h3", `Accounts (${users.rows.length})`), table);
  if (said) box.append(said);
}

// What a button in the list did, or why it was refused, under the list.
function usersListSaid(outcome) {
  const box = usersPart("au-list");
  let said = box.querySelector(":scope > .ad-said");
  if (!said) { said = el("div", null, "ad-said"); box.append(said); }
  adminStatus(said, outcome);
}

// Disabling is asked first, in the row, as a device's is: a slip would sign a colleague out
// in the middle of a shift.
function usersAskDisable(u, acts) {
  const was = [...acts.childNodes];
  const ask = el("span", null, "au-confirm");
  ask.setAttribute("role", "alert");
  const yes = adminButton(`Disable ${u.username}`, async () => {
    yes.disabled = true;
    await usersSetActive(u, false);
    if (acts.isConnected) acts.replaceChildren(...was);  // refused: the row as it was
    usersPart("au-list").querySelector(`tr[data-username="${CSS.escape(u.username)}"] button`)?.focus();
  }, "danger");
  const keep = adminButton("Keep", () => { acts.replaceChildren(...was); was.at(-1)?.focus(); });
  ask.append(el("strong", `Disable ${u.username}? They are signed out at once, everywhere.`), " ", yes, " ", keep);
  acts.replaceChildren(ask);
  yes.focus();
}

async function usersSetActive(u, active) {
  try {
    await adminSend(`/api/v1/users/${u.id}/${active ? "enable" : "disable"}`, "POST");
    usersListSaid(active ? `${u.username} can sign in again.` : `${u.username} is disabled: their sessions are refused from now on.`);
  } catch (err) {
    usersListSaid(err);
    return;
  }
  await loadUsers();
}

function usersDrawAdd() {
  const box = usersPart("au-add");
  if (box.firstChild) return;  // keep what is being typed across a reload of the list
  const scopes = usersScopeOptions(null);
  box.append(adminForm({
    legend: "Add a user",
    submitLabel: "Add user",
    fields: [
      { name: "username", label: "Username", required: true, attrs: { maxlength: "100", autocomplete: "off" } },
      { name: "full_name", label: "Full name", attrs: { maxlength: "200" } },
      { name: "role", label: "Role", type: "select", options: usersRoleOptions(null), value: "operator" },
      { name: "scope", label: "Sees", type: "select", options: scopes, value: scopes[0]?.[0] },
      { name: "phone", label: "Their phone (E.164)", type: "tel", attrs: { placeholder: "+447700900123", maxlength: "32" } },
      { name: "password", label: "Password (at least 10 characters)", type: "password", required: true, attrs: { autocomplete: "new-password" } },
      { name: "confirm", label: "Password again", type: "password", required: true, attrs: { autocomplete: "new-password" } },
    ],
    submit: async (v, form) => {
      if (v.password !== v.confirm) throw new Error("the two passwords differ");
      const [org, team] = JSON.parse(v.scope);
      const made = await adminSend("/api/v1/users", "POST", { username: v.username,
        full_name: v.full_name, role: v.role, org, team, phone: v.phone, password: v.password });
      form.reset();
      await loadUsers();
      return `${made.username} added. Tell them their password; it is not shown again.`;
    },
  }));
}

function usersCloseEdit() {
  users.editing = null;
  usersPart("au-edit").replaceChildren();
}

function usersDrawEdit(u) {
  users.editing = u.id;
  const box = usersPart("au-edit");
  const scopes = usersScopeOptions({ org: u.org, team: u.team });
  const change = adminForm({
    legend: `Change ${u.username}`,
    className: "au-change",
    fields: [
      { name: "full_name", label: "Full name", value: u.full_name, attrs: { maxlength: "200" } },
      { name: "role", label: "Role", type: "select", options: usersRoleOptions(u.role), value: u.role },
      { name: "scope", label: "Sees", type: "select", options: scopes, value: JSON.stringify([u.org, u.team]) },
      { name: "phone", label: "Their phone (E.164)", type: "tel", value: u.phone, help: "Rung first when they call someone from an alert.", attrs: { maxlength: "32" } },
    ],
    submit: async (v) => {
      const [org, team] = JSON.parse(v.scope);
      await adminSend(`/api/v1/users/${u.id}`, "PUT", { role: v.role, org, team,
        full_name: v.full_name, phone: v.phone });
      await loadUsers();
      return `${u.username} changed.`;
    },
  });
  const pass = adminForm({
    legend: `New password for ${u.username}`,
    className: "au-password",
    submitLabel: "Set password",
    fields: [
      { name: "password", label: "New password (at least 10 characters)", type: "password", required: true, attrs: { autocomplete: "new-password" } },
      { name: "confirm", label: "New password again", type: "password", required: true, attrs: { autocomplete: "new-password" } },
    ],
    submit: async (v, form) => {
      if (v.password !== v.confirm) throw new Error("the two passwords differ");
      await adminSend(`/api/v1/users/${u.id}/password`, "PUT", { password: v.password });
      form.reset();
      return `Password set for ${u.username}. Tell it to them; it is not shown again.`;
    },
  });
  box.replaceChildren(change, pass, adminButton("Close", usersCloseEdit));
  change.querySelector("input").focus();
}
