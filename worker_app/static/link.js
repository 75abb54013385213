// The app's MQTT link to the service (protocol v1): one persistent session, the last will,
// commands on `cmd`, and an outbox kept in localStorage so that nothing the worker does while
// the connection is down is lost or doubled. mqtt.js's own store of messages in flight lives
// in memory only, so each connection is a new client and the outbox is the only copy: on
// every connect what the broker has not acknowledged is sent again, with the same ids.
import { load, save } from "./store.js";

const ALERT_RESEND_MS = 3000;   // an alert goes again, same id, until `alert_received`
const MAX_LOCATIONS = 20;       // the newest positions kept while offline
const KEEPALIVE_S = 60;         // the broker allows up to 300

export class Link {
  constructor(creds, { onState, onCommand }) {
    this.creds = creds;
    this.onState = onState;
    this.onCommand = onCommand;
    this.client = null;
    this.state = "connecting";
    this.detail = "";
    this.stopped = false;
    this.retryMs = 1000;
    this.refusedMs = 2000;
    this.timer = null;
    this.inflight = new Set();  // outbox keys handed to the current client
    window.addEventListener("offline", () => this.drop("offline"));
    window.addEventListener("online", () => this.connectSoon(0));
    setInterval(() => this.resendAlerts(), ALERT_RESEND_MS);
  }

  get url() {
    return this.creds.mqtt_url || location.origin.replace(/^http/, "ws") + "/mqtt";
  }

  topic(suffix) { return `vigil/v1/${this.creds.device_id}/${suffix}`; }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    this.onState(state, detail);
  }

  start() {
    this.stopped = false;
    if (navigator.onLine === false) this.setState("offline");
    else this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop("stopped");
  }

  connect() {
    clearTimeout(this.timer);
    if (this.client || this.stopped) return;
    const id = this.creds.device_id;
    this.setState(this.state === "refused" ? "refused" : "connecting", this.detail);
    const client = window.mqtt.connect(this.url, {
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: this.creds.secret,
      clean: false,
      keepalive: KEEPALIVE_S,
      reconnectPeriod: 0,       // reconnection is ours: a new client, the outbox sent again
      connectTimeout: 15000,
      will: { topic: this.topic("status"), payload: '{"v":1,"online":false}', qos: 1, retain: true },
    });
    this.client = client;
    this.inflight = new Set();
    client.on("connect", () => {
      if (client !== this.client) return;
      this.retryMs = 1000;
      this.refusedMs = 2000;
      // Commands first, so nothing sent in answer to `online` is missed; then `online`.
      client.subscribe(this.topic("cmd"), { qos: 1 }, (err) => {
        if (err || client !== this.client) return;
        client.publish(this.topic("status"), JSON.stringify({ v: 1, online: true, ts: Date.now() }),
          { qos: 1, retain: true });
        this.setState("online");
        this.flush();
      });
    });
    client.on("message", (_topic, payload) => {
      let msg;
      try { msg = JSON.parse(new TextDecoder().decode(payload)); } catch { return; }
      if (msg && typeof msg === "object") this.onCommand(msg);
    });
    client.on("error", (err) => {
      // A refused CONNACK: wrong or revoked credentials (3.1.1 codes 4 and 5).
      if (client === this.client && (err?.code === 4 || err?.code === 5 || /authori|password/i.test(err?.message || ""))) {
        this.refused = true;
      }
    });
    client.on("close", () => this.closed(client));
  }

  closed(client) {
    if (client !== this.client) return;
    this.client = null;
    client.removeAllListeners("close");
    client.end(true);
    if (this.stopped) return;
    if (this.refused) {
      // Soon at first (a broker reloads its accounts a moment after an enrolment), then
      // every half minute.
      this.refused = false;
      this.setState("refused");
      this.connectSoon(this.refusedMs);
      this.refusedMs = Math.min(this.refusedMs * 2, 30000);
      return;
    }
    this.setState(navigator.onLine === false ? "offline" : "connecting");
    if (navigator.onLine !== false) {
      this.connectSoon(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    }
  }

  connectSoon(ms) {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.connect(), ms);
  }

  // The browser says the network has gone: close the socket now rather than wait for the
  // keepalive, and connect again the moment it returns.
  drop(why) {
    const client = this.client;
    if (!client) { if (why === "offline") this.setState("offline"); return; }
    this.client = null;
    client.removeAllListeners("close");
    client.end(true);
    this.setState(why === "stopped" ? "stopped" : "offline");
  }

  // ---- the outbox ----

  outbox() { return load("outbox", []); }

  send(suffix, payload, { key, qos = 1, retain = false, keep = false } = {}) {
    const entry = { key: key || `${suffix}:${payload.id || ""}:${payload.ts}:${Math.random().toString(36).slice(2)}`,
      suffix, payload, qos, retain, keep };
    let box = this.outbox().filter((e) => e.key !== entry.key);
    box.push(entry);
    if (suffix === "location") {
      const locs = box.filter((e) => e.suffix === "location");
      if (locs.length > MAX_LOCATIONS) {
        const drop = new Set(locs.slice(0, locs.length - MAX_LOCATIONS).map((e) => e.key));
        box = box.filter((e) => !drop.has(e.key));
      }
    }
    save("outbox", box);
    if (this.state === "online") this.publish(entry);
    return entry.key;
  }

  // Forget an entry: an alert once `alert_received` came, anything else once delivered.
  release(key) {
    save("outbox", this.outbox().filter((e) => e.key !== key));
    this.inflight.delete(key);
  }

  pending() { return this.outbox().length; }

  publish(entry) {
    const client = this.client;
    if (!client || this.state !== "online") return;
    this.inflight.add(entry.key);
    client.publish(this.topic(entry.suffix), JSON.stringify(entry.payload),
      { qos: entry.qos, retain: entry.retain }, (err) => {
        if (client !== this.client) return;  // that connection is gone; the next sends it
        if (err) { this.inflight.delete(entry.key); return; }
        if (!entry.keep) this.release(entry.key);
      });
  }

  flush() {
    for (const entry of this.outbox()) if (!this.inflight.has(entry.key)) this.publish(entry);
  }

  resendAlerts() {
    if (this.state !== "online") return;
    for (const entry of this.outbox()) if (entry.keep) this.publish(entry);
  }
}
