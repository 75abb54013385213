// Vigil console: times relative to now ("3m 05s ago"), kept live. One timer, once a second,
// runs every ticker: the queue's ages (console.js) and every element on the page made by
// `ago`, which carries its time in data-ago. A tick writes only the text that changed, and
// only a text node's data, so that a second with nothing new costs no layout.
"use strict";

// How long ago: `at` is an ISO time or milliseconds since the epoch.
function since(at) {
  const ms = typeof at === "number" ? at : Date.parse(at);
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

const tickers = [];
// Run `fn` once a second, on the page's one timer.
function everySecond(fn) { tickers.push(fn); }
setInterval(() => { for (const fn of tickers) fn(); }, 1000);

// A <time> saying how long ago `at` was, and going on saying it as time passes.
function ago(at) {
  const ms = typeof at === "number" ? at : Date.parse(at);
  const t = document.createElement("time");
  t.className = "ago";
  t.dateTime = new Date(ms).toISOString();
  t.title = new Date(ms).toLocaleString();
  t.dataset.ago = String(ms);
  t.textContent = `${since(ms)} ago`;
  return t;
}

function setText(e, text) {
  const node = e.firstChild;
  if (!node) e.textContent = text; else if (node.data !== text) node.data = text;
}

everySecond(() => {
  for (const e of document.querySelectorAll("[data-ago]")) setText(e, `${since(Number(e.dataset.ago))} ago`);
});
