"""Security headers on every response, and the console's content security policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response

from monitor.config import Settings


def tile_source(url_template: str) -> str:
    """The origin map tiles come from ("https://*.tile.example.org" for {s} subdomains)."""
    if not url_template:
        return ""
    parts = urlsplit(url_template.replace("{s}", "x"))
    if not parts.scheme or not parts.hostname:
        return ""
    host = parts.netloc
    if "{s}." in url_template:
        host = "*." + host.split(".", 1)[1]
    return f"{parts.scheme}://{host}"


def content_policy(settings: Settings) -> str:
    tiles = tile_source(settings.map_tiles_url)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # Leaflet writes style attributes into the markup it builds.
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob: {tiles}".rstrip(),
            "media-src 'self' blob:",  # audio clips are fetched, then played from blob URLs
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def install(app: FastAPI, settings: Settings) -> None:
    policy = content_policy(settings)
    fixed = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in fixed.items():
            response.headers.setdefault(name, value)
        # Every page, /docs included: its Swagger UI is served from here and started from a
        # file, not inline (monitor/site).
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
