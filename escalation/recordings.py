"""A call's recording, fetched from Twilio through the twilio library and its media URL:
for the worker line's calls (gateways) and the calls operators place (escalation.calls)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from monitor.config import Settings

# What Twilio serves a recording as, by the extension asked for (none: WAV).
CODECS = {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav"}


class FetchFailed(Exception):
    """The recording could not be fetched from Twilio; the message says why."""


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def fetch(settings: Settings, recording_sid: str, call_sid: str) -> tuple[bytes, str, int | None]:
    """The recording's bytes, codec and duration (s), through Twilio's REST API."""
    account, token = settings.twilio_account_sid, settings.twilio_auth_token
    if not (account and token):
        raise FetchFailed("no Twilio credentials are configured")
    client = Client(account, token, http_client=TwilioHttpClient(timeout=settings.twilio_timeout_s))
    client.api.base_url = settings.twilio_api_base
    try:
        found = client.recordings(recording_sid).fetch()
    except (TwilioException, OSError) as exc:
        raise FetchFailed(f"Twilio did not give the recording: {exc}") from exc
    if found.call_sid != call_sid:
        raise FetchFailed(f"recording {recording_sid} is not of call {call_sid}")
    media = found.media_url or ""
    # Twilio's credentials go to Twilio only: a recording kept in storage of the account's
    # own (Twilio's "external storage") is not fetched, and the timeline says so.
    if not same_origin(media, settings.twilio_api_base):
        raise FetchFailed(f"the recording is kept outside Twilio's API ({media[:200]})")
    url = media if media.endswith((".mp3", ".wav")) else media + ".mp3"  # a tenth of a WAV
    limit = settings.max_evidence_bytes
    try:
        # Twilio answers with a redirect to its storage: httpx drops the credentials when a
        # redirect leaves the origin they were meant for.
        with (
            httpx.Client(
                timeout=settings.twilio_timeout_s, auth=(account, token), follow_redirects=True
            ) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchFailed(f"Twilio answered {response.status_code} for the media")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FetchFailed(
                        f"the recording is over {limit} bytes (VIGIL_MAX_EVIDENCE_BYTES)"
                    )
                chunks.append(chunk)
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.HTTPError as exc:
        raise FetchFailed(f"Twilio unreachable for the media: {exc}") from exc
    data = b"".join(chunks)
    if not data:
        raise FetchFailed("the recording's media is empty")
    codec = CODECS.get(media_type) or url.rsplit(".", 1)[-1]
    duration = int(found.duration) if (found.duration or "").isdigit() else None
    return data, codec, duration
