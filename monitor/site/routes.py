"""The favicon (/favicon.svg, /favicon.ico) and /docs, with its assets under /docs/assets/."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"
SWAGGER = STATIC / "vendor" / "swagger-ui"

# Icons and the vendored viewer change only with a release: browsers may keep them a day.
# The page itself is asked for afresh, so that a release's page names its own assets.
KEPT = "public, max-age=86400"

# URL path: the file, its type, its caching.
FILES: dict[str, tuple[Path, str, str]] = {
    "/favicon.svg": (STATIC / "favicon.svg", "image/svg+xml", KEPT),
    "/favicon.ico": (STATIC / "favicon.ico", "image/vnd.microsoft.icon", KEPT),
    "/docs": (STATIC / "docs.html", "text/html; charset=utf-8", "no-cache"),
    "/docs/assets/docs.js": (STATIC / "docs.js", "text/javascript; charset=utf-8", "no-cache"),
    "/docs/assets/swagger-ui-bundle.js": (
        SWAGGER / "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        KEPT,
    ),
    "/docs/assets/swagger-ui.css": (SWAGGER / "swagger-ui.css", "text/css; charset=utf-8", KEPT),
}


def install(app: FastAPI) -> None:
    """Serve each file at its path. The app is made with docs_url=None: FastAPI's own page
    loads Swagger UI from a CDN (blank without the internet) and starts it inline."""
    for url, (path, media_type, cache) in FILES.items():

        def serve(
            path: Path = path, media_type: str = media_type, cache: str = cache
        ) -> FileResponse:
            return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})

        app.add_api_route(url, serve, methods=["GET"], include_in_schema=False)
