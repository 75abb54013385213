// Vigil console, Admin tab: the editor of a file the service keeps whole and replaces at
// once (escalation policies, procedures), as its `vigil` command reads and writes it: line
// numbers; Check and Save, whose refusals (the command's words, each naming its place) are
// listed beside it; Load stored; Export. A save names the version it was made on, so the
// service refuses it rather than undo someone else's. What is valid is the service's call.
"use strict";

// `box`: where it goes; `prefix`: its elements' ids (`<prefix>-yaml`, `<prefix>-result`);
// `url`: the file's route (GET, PUT, POST `url/check`, GET `url.yaml`); `counted(r)`: a
// check's or save's answer in words ("3 contacts, 2 policies"); `onLoaded(file)`: each file
// loaded. Returns `{ load(force), refresh(), put(text, said) }`: the stored file into the
// editor, unless `force` not over an edit not yet saved; `refresh`, over it; `put`, another
// text, not saved.
function fileEditor({ box, prefix, title, about, label, url, downloadName, counted, onLoaded }) {
  const ed = { loaded: undefined, base: null };
  const gutter = el("pre", "1", "af-lines");
  gutter.setAttribute("aria-hidden", "true");
  const text = el("textarea", null, "af-yaml");
  text.id = `${prefix}-yaml`;
  text.spellcheck = false;
  text.setAttribute("aria-label", label);
  text.setAttribute("wrap", "off");
  const numbers = () => {
    const n = text.value.split("\n").length;
    if (gutter.dataset.n !== String(n)) {
      gutter.dataset.n = String(n);
      gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join("\n");
    }
    gutter.scrollTop = text.scrollTop;
  };
  text.addEventListener("input", numbers);
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
  const editor = el("div", null, "af-editor");
  editor.append(gutter, text);
  const status = el("div", null, "af-result");
  status.id = `${prefix}-result`;
  status.setAttribute("role", "status");

  // What Check or Save said: done, or each problem on a line of its own.
  const result = (outcome) => {
    const refused = outcome instanceof Error;
    status.classList.toggle("error", refused);
    status.setAttribute("role", refused ? "alert" : "status");
    if (!refused) { status.replaceChildren(el("p", outcome)); return; }
    const list = el("ul", null, "af-problems");
    for (const line of outcome.message.split("\n")) list.append(el("li", line));
    status.replaceChildren(el("p", outcome.saving ? "Not saved: nothing was changed." : "Not valid:"), list);
  };
  ed.load = async (force = false) => {
    const file = await api(url);
    const edited = ed.loaded !== undefined && text.value !== ed.loaded;
    if (force || !edited) {
      text.value = file.yaml;
      text.scrollTop = 0;  // a file read from its start, whatever was scrolled to before
      ed.loaded = file.yaml;
      ed.base = file.sha256;
      numbers();
      if (force) result("Loaded the stored file.");
    }
    onLoaded?.(file);
  };
  // The stored file changed another way (a contact saved from its form): shown afresh.
  ed.refresh = () => { ed.loaded = undefined; return ed.load(); };
  // Another text to start from, in the editor and not saved.
  ed.put = (value, said) => {
    text.value = value;
    text.scrollTop = 0;
    numbers();
    result(said);
    text.focus();
  };
  const act = async (what) => {
    try {
      if (what === "check") {
        const r = await adminSend(`${url}/check`, "POST", { yaml: text.value });
        result(`Valid: ${counted(r)}. Not saved yet.`);
        return;
      }
      const r = await adminSend(url, "PUT", { yaml: text.value, base: ed.base });
      await ed.load(true);
      result(`Saved: ${counted(r)} (${r.summary}).`);
    } catch (err) {
      err.saving = what === "save";
      result(err);
    }
  };
  const exported = async () => {
    try {
      await download(`${url}.yaml`, downloadName);  // review.js
    } catch (err) {
      result(err);
    }
  };
  const buttons = el("div", null, "af-buttons");
  buttons.append(adminButton("Check", () => act("check")),
    adminButton("Save", () => act("save")),
    adminButton("Load stored", () => ed.load(true)),
    adminButton("Export YAML", exported));
  box.replaceChildren(el("h3", title), el("p", about, "note"), editor, buttons, status);
  return ed;
}
