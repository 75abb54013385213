"""Serves the worker app's files at /app: the page, its scripts, the service worker (allowed
the whole of /app/, never cached by HTTP) and the web app manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
}


def content_policy(mqtt_url: str) -> str:
    """The console's policy, plus the broker's own WebSocket origin when the app is told to
    connect there instead of the relay at its own origin."""
    connect = "connect-src 'self'"
    parts = urlsplit(mqtt_url) if mqtt_url else None
    if parts and parts.scheme in ("ws", "wss") and parts.netloc:
        connect += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",  # the voice memo is played back from a blob URL
            connect,
            # mqtt.js keeps its keepalive timer in a worker made from a blob, so that a
            # page in the background still pings the broker on time.
            "worker-src 'self' blob:",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file() and p.suffix in TYPES)


def install(app: FastAPI, context: dict[str, Any]) -> None:
    settings = context["settings"]
    policy = content_policy(str(getattr(settings, "app_mqtt_url", "") or ""))

    def headers_for(rel: str) -> dict[str, str]:
        h = {"Content-Security-Policy": policy}
        if rel in ("sw.js", "index.html"):
            # A changed service worker must reach the phone on its next visit: no HTTP cache
            # between them (the service worker keeps its own copy of the app's files).
            h["Cache-Control"] = "no-store"
        else:
            h["Cache-Control"] = "no-cache"
        if rel == "sw.js":
            h["Service-Worker-Allowed"] = "/app/"
        return h

    @app.get("/app", include_in_schema=False)
    def app_root() -> RedirectResponse:
        return RedirectResponse("/app/", status_code=308)

    @app.get("/app/", include_in_schema=False)
    def app_index() -> FileResponse:
        return FileResponse(
            STATIC / "index.html", media_type=TYPES[".html"], headers=headers_for("index.html")
        )

    # One route a file, no catch-all: the other parts' routes under /app (config.json) stay
    # theirs whatever order the parts are installed in.
    for path in _files():
        rel = path.relative_to(STATIC).as_posix()

        def serve(path: Path = path, rel: str = rel) -> FileResponse:
            return FileResponse(path, media_type=TYPES[path.suffix], headers=headers_for(rel))

        app.add_api_route(f"/app/{rel}", serve, methods=["GET"], include_in_schema=False)
