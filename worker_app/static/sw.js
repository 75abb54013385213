// Vigil worker app's service worker: keeps the app's own files so it opens without a
// network, and shows Web Push notifications. It never stores an answer of the API: alerts,
// enrolment and evidence always go to the service itself.
"use strict";

const CACHE = "vigil-app-v2";
const SHELL = [
  "/app/",
  "/app/app.css",
  "/app/app.js",
  "/app/link.js",
  "/app/clips.js",
  "/app/store.js",
  "/app/ui.js",
  "/app/positions.js",
  "/app/alert.js",
  "/app/visit.js",
  "/app/places.js",
  "/app/vendor/mqtt/mqtt.min.js",
  "/app/manifest.webmanifest",
  "/app/icons/icon-192.png",
  "/app/icons/icon-512.png",
  "/app/icons/maskable-512.png",
  "/app/icons/apple-touch-icon.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  // The page itself, whatever its query or fragment, is the shell's first file.
  const path = url.pathname === "/app/index.html" ? "/app/" : url.pathname;
  if (!SHELL.includes(path)) return;  // the API, config.json, the relay: never from here
  // The kept copy at once, a fresh one fetched meanwhile for the next time the app opens.
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const kept = await cache.match(path);
    const fresh = fetch(path, { cache: "no-cache" }).then((res) => {
      if (res.ok) cache.put(path, res.clone());
      return res;
    });
    if (kept) {
      event.waitUntil(fresh.catch(() => undefined));
      return kept;
    }
    return fresh;
  })());
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { body: event.data?.text() }; }
  const title = data.title || "Vigil";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "Open the app.",
    tag: data.tag || "vigil",
    renotify: true,
    requireInteraction: true,
    icon: "/app/icons/icon-192.png",
    badge: "/app/icons/icon-192.png",
    vibrate: [400, 200, 400],
    data: { url: "/app/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const c of open) if (new URL(c.url).pathname.startsWith("/app/")) return c.focus();
    return self.clients.openWindow("/app/");
  })());
});
