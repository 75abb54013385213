"""Keeping secrets out of the service's log.

Vigil itself puts no credential in a URL (the console's websocket signs in with its first
message; only the OsmAnd protocol's trackers send theirs, their identifier, in the query
string), but URLs are logged whole by others: uvicorn's access log writes each request's path
and query string, and httpx logs every outgoing request's URL, where the path of a chat
service's webhook (`https://hooks.example.com/services/T0/B0/<secret>`) is its credential.
These filters rewrite such records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import httpx

# A query parameter whose name suggests a credential: token=, access_token=, api_key=, ...
_SECRET_PARAM = re.compile(
    r"(?i)([?&][^=&\s\"]*(?:token|ticket|secret|password|passwd|key|signature|auth)"
    r"[^=&\s\"]*=)[^&\s\"]*"
)
# And a tracker's identifier (`id=` or `deviceid=`, the OsmAnd protocol's), its only
# credential (docs/integrations.md).
_TRACKER_ID = re.compile(r"(?i)([?&](?:id|deviceid)=)[^&\s\"]*")
REDACTED = "[redacted]"


def redact_query(text: str) -> str:
    """`text` with the value of every credential-like query parameter replaced."""
    return _TRACKER_ID.sub(r"\1" + REDACTED, _SECRET_PARAM.sub(r"\1" + REDACTED, text))


def origin_only(url: httpx.URL | str) -> str:
    """An outgoing URL as its scheme and host: the rest may be the receiver's secret."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{REDACTED}"


class _RedactQueries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


class _OutgoingOrigins(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                origin_only(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


# Loggers records are written to directly (a logger's filters do not see its children's).
_FILTERS: dict[str, logging.Filter] = {
    "uvicorn.access": _RedactQueries(),  # GET /path?query HTTP/1.1
    "uvicorn.error": _RedactQueries(),  # "WebSocket /path?query" [accepted]
    "httpx": _OutgoingOrigins(),  # HTTP Request: POST <url> "HTTP/1.1 200 OK"
}


def keep_secrets_out() -> None:
    """Install the filters (once; calling again changes nothing)."""
    for name, flt in _FILTERS.items():
        logger = logging.getLogger(name)
        if flt not in logger.filters:
            logger.addFilter(flt)
