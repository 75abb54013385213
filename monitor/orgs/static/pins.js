// The worker's own PINs, from the one-time link an administrator gave them. The link's
// token is in the fragment (never sent in a request line, so in no log); every rule
// (4 to 8 digits, the two differ, each typed the same twice) is the service's, shown here
// in its words.
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
const form = document.getElementById("pins");
const who = document.getElementById("who");
const status = document.getElementById("status");

function say(text, kind) {
  status.textContent = text;
  status.className = kind || "";
  status.setAttribute("role", kind === "error" ? "alert" : "status");
}

// The service's words as a sentence on the worker's phone: "This link has been used…",
// "Duress PIN again: …" (not "duress_pin_again").
const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const fieldName = (loc) => sentence(loc.filter((p) => p !== "body").join(".").replaceAll("_", " ").replace(/\bpin\b/g, "PIN"));

function problem(body, res) {
  const d = body && body.detail;
  if (typeof d === "string") return sentence(d);
  if (Array.isArray(d)) {
    return d.map((e) => `${fieldName(e.loc || [])}: ${e.msg}`).join("; ");
  }
  return res.statusText || "the service refused it";
}

async function post(path, body) {
  let res;
  try {
    res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("Could not reach the service: check your connection and try again.");
  }
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw Object.assign(new Error(problem(data, res)), { status: res.status });
  return data;
}

async function start() {
  if (!token) { who.textContent = "This link is incomplete: open the whole link you were given."; return; }
  try {
    const about = await post("/api/v1/pin-links/about", { token });
    who.textContent = `For ${about.worker_name}. This link works once, until ${new Date(about.expires_at).toLocaleString()}.`;
    form.hidden = false;
    form.elements.namedItem("cancel_pin").focus();
  } catch (e) {
    who.textContent = e.message;
  }
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { token };
  for (const name of ["cancel_pin", "cancel_pin_again", "duress_pin", "duress_pin_again"]) {
    body[name] = form.elements.namedItem(name).value;
  }
  const go = form.querySelector("button");
  go.disabled = true;
  try {
    await post("/api/v1/pin-links/use", body);
    form.reset();
    form.hidden = true;
    history.replaceState(null, "", location.pathname);  // the used token off the screen
    say("Your PINs are saved. Remember them: nobody else knows them.", "done");
  } catch (err) {
    say(`Not saved: ${err.message}`, "error");
  } finally {
    go.disabled = false;
  }
});

start();
