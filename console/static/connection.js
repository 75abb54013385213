// Vigil console: the truth about the connection. While the live link to the service is down
// what the console shows may be out of date: the queue is greyed and its ages stop, a
// banner says since when, and every action in the alert is off, with the reason. Once back,
// the console catches up (console.js, connect) and says so for a few seconds. The service's
// own trouble (it cannot store alerts) is another banner, #service-banner.
"use strict";

const link = { lostAt: null, heardAt: 0, silentSince: null, watchdog: null, shownTimer: null };

// The hub speaks at least every 20 s (a heartbeat): a link silent for longer than this is
// dead even if the browser has not noticed (a laptop asleep, a network that dropped it).
const SILENT_MS = 45_000;
// How long "caught up" stays on screen.
const CAUGHT_UP_MS = 6_000;

const clockTime = clock;  // times.js: "14:02:07", as every time of day on the page

function staleness(stale) {
  state.stale = stale;
  document.body.classList.toggle("stale", stale);
  $("#detail").disabled = stale;  // a fieldset: every control in the alert
  $("#rs-confirm").disabled = stale;
  if (stale) $("#rs-confirm").title = "Not connected to the service: try again once it is back.";
  else $("#rs-confirm").removeAttribute("title");
  if (urgency.shown) showTitle(...urgency.shown);  // urgency.js: "OFFLINE · " first, or not
}

function connBanner(text, good) {
  const banner = $("#conn-banner");
  clearTimeout(link.shownTimer);
  banner.hidden = !text;
  banner.textContent = text || "";
  banner.classList.toggle("good", Boolean(good));
  // The alert's sticky actions stop below the banner, however many lines it takes.
  document.body.classList.toggle("banner-shown", Boolean(text));
  document.documentElement.style.setProperty("--banner-h", `${banner.offsetHeight}px`);
}

function connectionLost() {
  clearInterval(link.watchdog);
  // From the first moment it was lost: retries do not move it. A link found silent was
  // lost when the service was last heard from.
  if (link.lostAt === null) link.lostAt = new Date(link.silentSince || Date.now());
  link.silentSince = null;
  staleness(true);
  connBanner(`Connection to the service lost at ${clockTime(link.lostAt)}: what you see may ` +
    "be out of date. Reconnecting… Actions are off until it is back.");
}

function connectionOpened(ws) {
  link.heardAt = Date.now();
  ws.addEventListener("message", () => { link.heardAt = Date.now(); });
  clearInterval(link.watchdog);
  link.watchdog = setInterval(() => {
    if (state.ws === ws && Date.now() - link.heardAt > SILENT_MS) {
      link.silentSince = link.heardAt;
      ws.close();
    }
  }, 5_000);
  if (link.lostAt !== null) connBanner("Connected again: catching up…");
}

// What the console missed has arrived (console.js, onMessage): it shows the truth again.
function caughtUp() {
  if (!state.stale && link.lostAt === null) return;
  staleness(false);
  if (link.lostAt === null) return;  // the first connection: nothing was ever shown stale
  const lost = link.lostAt;
  link.lostAt = null;
  connBanner(`Reconnected at ${clockTime(new Date())}; caught up with everything since ` +
    `${clockTime(lost)}.`, true);
  link.shownTimer = setTimeout(() => connBanner(null), CAUGHT_UP_MS);
  // The alert on screen may have changed meanwhile: fetch it as it is now, all of it, once
  // it is on screen (console.js; never opening a pane the operator closed).
  if (state.selected !== null) { for (const p of ["alert", ...PARTS]) refreshing.parts.add(p); refreshSoon(); }
}

// Signed out: the link is closed on purpose, and the next sign-in starts afresh.
function connectionEnded() {
  clearInterval(link.watchdog);
  link.lostAt = null;
  staleness(false);
  connBanner(null);
}
