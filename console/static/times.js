// Vigil console: times, said one way everywhere. How long ("2 min 5 s", as the service's
// labels.span says it), how long ago and how long until, kept live; and a time of day
// ("12:07:24", 24 h, the reader's zone). One timer, once a second, runs every ticker: the
// queue's ages (console.js), every element made by `ago` (data-ago), the escalation's
// countdowns, a connected call's running time, a fix's age. A tick writes only the text that
// changed, and only a text node's data, so that a second with nothing new costs no layout.
"use strict";

// A length of time in seconds, in words: "45 s", "2 min 5 s", "1 h 2 min". No break inside
// a number and its unit: the queue's age cell is narrow at a phone's width.
function duration(seconds) {
  const t = Math.max(0, Math.round(seconds));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
  const text = h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
  return text.replace(/ (h|min|s)\b/g, "\u00a0$1");
}

const msOf = (at) => (typeof at === "number" ? at : at instanceof Date ? at.getTime() : Date.parse(at));

// How long ago: `at` is an ISO time or milliseconds since the epoch.
function since(at) { return duration(Math.floor((Date.now() - msOf(at)) / 1000)); }

// How long until `at`; `skew` is the service's clock minus this one's (escalation.js).
function countdown(at, skew = 0) { return duration(Math.ceil((msOf(at) - (Date.now() + skew)) / 1000)); }

// A time of day, to the second, 24 h: "12:07:24". `withDate` adds the day: "6 Dec, 12:07:24".
function clock(at, withDate = false) {
  const d = new Date(msOf(at));
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  return withDate ? `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}` : time;
}

const tickers = [];
// Run `fn` once a second, on the page's one timer.
function everySecond(fn) { tickers.push(fn); }
setInterval(() => { for (const fn of tickers) fn(); }, 1000);

// A <time> saying how long ago `at` was, and going on saying it as time passes.
function ago(at) {
  const ms = msOf(at);
  const t = document.createElement("time");
  t.className = "ago";
  t.dateTime = new Date(ms).toISOString();
  t.title = clock(ms, true);
  t.dataset.ago = String(ms);
  t.textContent = `${since(ms)} ago`;
  return t;
}

function setText(e, text) {
  const node = e.firstChild;
  if (!node) e.textContent = text; else if (node.data !== text) node.data = text;
}

everySecond(() => {
  if (state.stale) return;  // not connected: what it counts from may be out of date (connection.js)
  for (const e of document.querySelectorAll("[data-ago]")) setText(e, `${since(Number(e.dataset.ago))} ago`);
});
