// Listening: the microphone recorded in short clips while an alert is active, and the
// visit's voice memo. Each clip is kept in IndexedDB with its sha256 until its bytes are
// uploaded (HTTP PUT, Basic auth) and its `evidence` message is in the outbox.
import { clips, settings, uuid } from "./store.js";
import { deviceFetch } from "./ui.js";

const TYPES = [
  ["audio/webm;codecs=opus", "webm"],
  ["audio/ogg;codecs=opus", "opus"],
  ["audio/mp4", "mp4"],  // Safari
  ["audio/webm", "webm"],
];

function format() {
  if (typeof MediaRecorder === "undefined") return null;
  for (const [mime, codec] of TYPES) if (MediaRecorder.isTypeSupported?.(mime)) return { mime, codec };
  return { mime: "", codec: "webm" };
}

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// One clip: a MediaRecorder of its own, so that every clip is a whole file that plays alone.
function recordOne(stream, fmt, maxMs, onStop) {
  const rec = new MediaRecorder(stream, fmt.mime ? { mimeType: fmt.mime } : undefined);
  const parts = [];
  const started = performance.now();
  rec.ondataavailable = (e) => { if (e.data && e.data.size) parts.push(e.data); };
  rec.onstop = () => onStop(new Blob(parts, { type: rec.mimeType || fmt.mime }),
    Math.round(performance.now() - started));
  rec.start();
  const timer = maxMs ? setTimeout(() => { if (rec.state !== "inactive") rec.stop(); }, maxMs) : null;
  return { stop() { clearTimeout(timer); if (rec.state !== "inactive") rec.stop(); } };
}

async function keep(blob, durationMs, owner, codec, id) {
  const data = await blob.arrayBuffer();
  if (!data.byteLength) return null;
  const clip = { id: id || `clip-${uuid()}`, ...owner, codec, duration_ms: durationMs,
    bytes: data.byteLength, sha256: await sha256Hex(data), ts: Date.now(), data };
  await clips.put(clip);
  return clip;
}

// Clips of `clip_ms` one after another until stop(); each is kept, then `onClip(clip)`.
export class Listener {
  constructor(owner, onClip) {
    this.owner = owner;
    this.onClip = onClip;
    this.stream = null;
    this.current = null;
    this.running = false;
  }

  async start() {
    const fmt = format();
    if (!fmt || !navigator.mediaDevices?.getUserMedia) throw new Error("no microphone recording in this browser");
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.running = true;
    const next = () => {
      if (!this.running) return;
      this.current = recordOne(this.stream, fmt, settings().clip_ms, (blob, ms) => {
        next();  // the next clip starts at once: the gap is a few milliseconds
        keep(blob, ms, this.owner, fmt.codec).then((clip) => clip && this.onClip(clip));
      });
    };
    next();
  }

  stop() {
    this.running = false;
    this.current?.stop();
    this.current = null;
    // The tracks end after the last clip has been handed over.
    const stream = this.stream;
    this.stream = null;
    setTimeout(() => stream?.getTracks().forEach((t) => t.stop()), 200);
  }
}

// The visit's voice memo: one recording, stopped by the worker (or at memo_max_s).
export class Memo {
  async start() {
    const fmt = format();
    if (!fmt || !navigator.mediaDevices?.getUserMedia) throw new Error("no microphone recording in this browser");
    this.fmt = fmt;
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.done = new Promise((resolve) => {
      this.rec = recordOne(this.stream, fmt, settings().memo_max_s * 1000, (blob, ms) => {
        this.stream.getTracks().forEach((t) => t.stop());
        resolve({ blob, ms });
      });
    });
  }

  stop() { this.rec?.stop(); return this.done; }

  // Kept for upload once the visit it belongs to is known.
  async keep(visitId) {
    const { blob, ms } = await this.done;
    return keep(blob, ms, { visit_id: visitId }, this.fmt.codec, `memo-${uuid()}`);
  }
}

// Uploads every kept clip, then puts its `evidence` message in the outbox. Runs again when
// asked (a new clip, the network back) and every few seconds while clips wait.
export class Uploader {
  constructor(creds, link, onChange) {
    this.creds = creds;
    this.link = link;
    this.onChange = onChange;
    this.busy = false;
    this.again = false;
    this.waiting = 0;
    window.addEventListener("online", () => this.run());
    setInterval(() => { if (this.waiting) this.run(); }, 5000);
  }

  async run() {
    if (this.stopped) return;
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    try {
      do {
        this.again = false;
        const all = await clips.all();
        this.waiting = all.length;
        for (const clip of all) {
          if (!(await this.upload(clip))) break;  // offline or refused: try later
          this.waiting -= 1;
        }
      } while (this.again);
    } catch (err) {
      console.warn("Vigil could not read the recordings waiting on this phone:", err);
    } finally {
      this.busy = false;
      this.onChange?.(this.waiting);
    }
  }

  async upload(clip) {
    let res;
    try {
      res = await deviceFetch(this.creds, `evidence/${encodeURIComponent(clip.id)}`, {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: clip.data,
      });
    } catch {
      return false;
    }
    // Tried again later: the service or the network is having trouble. Any other refusal is
    // for good (too large, refused, this phone revoked): that clip is dropped, so the clips
    // after it are not held up behind it for ever.
    if (res.status >= 500 || res.status === 429 || res.status === 408) return false;
    const owner = clip.alert_id ? { alert_id: clip.alert_id } : { visit_id: clip.visit_id };
    if (res.ok) {
      this.link.send("evidence", { v: 1, ts: clip.ts, id: clip.id, ...owner, kind: "audio",
        codec: clip.codec, duration_ms: clip.duration_ms, bytes: clip.bytes, sha256: clip.sha256 },
      { key: `evidence:${clip.id}` });
    }
    await clips.remove(clip.id);
    return true;
  }
}
