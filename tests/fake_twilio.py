"""A local stand-in for Twilio's REST API (Messages, Calls and Recordings with their media)
for tests."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from tests.support import WAIT_S

Kind = Literal["sms", "call", "other"]

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"

# Account sid, collection ("Messages"/"Calls"), optional resource sid.
_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/(?P<collection>Messages|Calls|Recordings)"
    r"(?:/(?P<sid>[^/]+))?\.json$"
)
# A recording's media: no extension or .wav for WAV, .mp3 for MP3 (as Twilio serves them).
_MEDIA = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE[0-9a-f]{{32}})"
    r"(?P<ext>\.mp3|\.wav)?$"
)
_MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/x-wav", "": "audio/x-wav"}
_KINDS: dict[str, Kind] = {"Messages": "sms", "Calls": "call"}
_SID_PREFIX = {"sms": "SM", "call": "CA"}


@dataclass
class Request:
    """One request as the fake saw it.

    Recorded on arrival, so a request still held by hang() is already visible; status_code is 0
    and sid None until it is answered (and stay so if stop() dropped it unanswered).
    """

    kind: Kind
    at: float
    params: dict[str, list[str]]
    sid: str | None = None
    status_code: int = 0
    method: str = "POST"
    path: str = ""

    def param(self, name: str) -> str | None:
        """The first value of a form parameter, or None."""
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def to(self) -> str | None:
        return self.param("To")

    @property
    def answered(self) -> bool:
        return self.status_code != 0


@dataclass
class _Failure:
    status: int
    code: int
    message: str | None
    times: int | None
    kind: Kind | None


@dataclass
class _Hang:
    seconds: float
    times: int | None
    kind: Kind | None


@dataclass
class _State:
    requests: list[Request] = field(default_factory=list)
    messages: list[Request] = field(default_factory=list)
    calls: list[Request] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)  # a recording's sid -> its audio
    failures: dict[str, _Failure] = field(default_factory=dict)
    hangs: dict[str, _Hang] = field(default_factory=dict)


def _now_rfc2822() -> str:
    # Twilio writes dates as RFC 2822 with a numeric "+0000" zone, e.g.
    # "Thu, 24 Aug 2023 05:01:45 +0000"; the library parses them with email.utils.
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _error_body(status: int, code: int, message: str, detail: str | None = None) -> dict[str, Any]:
    # Twilio's legacy error shape. It must not carry "type" and "title": with those the library
    # raises TwilioServiceException (RFC 9457) instead of TwilioRestException.
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    return body


_DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Authenticate",
    403: "Forbidden",
    404: "The requested resource was not found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class FakeTwilio:
    """Serves Twilio's Messages and Calls endpoints on 127.0.0.1 from a daemon thread.

    Point the real client at it with ``client.api.base_url = fake.url``. Behaviour is scripted
    per destination number (the ``To`` parameter) with fail() and hang().
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._cond = threading.Condition()
        self._state = _State()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Kept after the first start so a stop()/start() pair (Twilio unreachable, then back)
        # keeps the same url the service under test was configured with.
        self._port = 0
        from tests.fake_twilio_voice import Voice  # it drives this fake's calls

        # Calls as Twilio runs them: answered, their TwiML fetched, dialled, bridged, ended.
        self.voice = Voice(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        self._server = server
        # A short poll interval so stop() returns promptly.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-twilio-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        # Wake hanging handlers first; they drop their connection instead of answering.
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None and self._port == 0:
            raise RuntimeError("FakeTwilio is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        to: str,
        status: int = 500,
        code: int = 20500,
        *,
        message: str | None = None,
        times: int | None = None,
        kind: Kind | None = None,
    ) -> None:
        """Answer create requests to ``to`` with a Twilio error.

        times=None fails every request; an int fails only the next that many, then the number
        behaves normally again. kind restricts it to "sms" or "call".
        """
        with self._cond:
            self._state.failures[to] = _Failure(status, code, message, times, kind)

    def hang(
        self,
        to: str,
        seconds: float,
        *,
        times: int | None = None,
        kind: Kind | None = None,
    ) -> None:
        """Hold create requests to ``to`` for ``seconds`` before handling them; with
        kind="other" and a recording's sid as ``to``, GETs of that recording's media; with
        kind="call" and a call's sid, its updates (POST Calls/{sid}.json).

        Only that handler thread waits; other requests are served meanwhile. Combined with
        fail() the request fails after the delay.
        """
        with self._cond:
            self._state.hangs[to] = _Hang(seconds, times, kind)

    def clear(self, to: str) -> None:
        """Forget fail() and hang() for one number."""
        with self._cond:
            self._state.failures.pop(to, None)
            self._state.hangs.pop(to, None)

    def set_status(self, sid: str, status: str, **fields: Any) -> None:
        """Change a stored message or call, as later GETs should see it."""
        with self._cond:
            resource = self._state.resources[sid]
            resource.update(fields, status=status, date_updated=_now_rfc2822())

    def add_recording(
        self,
        call_sid: str,
        audio: bytes,
        duration_s: int = 12,
        *,
        channels: int = 1,
        source: str = "RecordVerb",
    ) -> str:
        """A recording of a call, as Twilio keeps one when TwiML's <Record> ends (or a
        <Dial record=...>: source "DialVerb"): its resource under Recordings/ and its media
        at `media_url`. Returns its sid (RE...)."""
        sid = "RE" + secrets.token_hex(16)
        now = _now_rfc2822()
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": call_sid,
            "channels": channels,
            "conference_sid": None,
            "date_created": now,
            "date_updated": now,
            "duration": str(duration_s),
            "encryption_details": None,
            "error_code": None,
            "media_url": f"{self.url}{base}/Recordings/{sid}",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "source": source,
            "start_time": now,
            "status": "completed",
            "subresource_uris": {
                "add_on_results": f"{base}/Recordings/{sid}/AddOnResults.json",
                "transcriptions": f"{base}/Recordings/{sid}/Transcriptions.json",
            },
            "track": "both",
            "uri": f"{base}/Recordings/{sid}.json",
        }
        with self._cond:
            self._state.resources[sid] = resource
            self._state.media[sid] = audio
        return sid

    def reset(self) -> None:
        """Forget behaviours, records and stored resources."""
        with self._cond:
            self._state = _State()
            self._cond.notify_all()

    # -- inspection --------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request, in order of arrival, including refused ones and GETs."""
        with self._cond:
            return list(self._state.requests)

    @property
    def messages(self) -> list[Request]:
        """Requests that created a message (answered 201)."""
        with self._cond:
            return list(self._state.messages)

    @property
    def calls(self) -> list[Request]:
        """Requests that created a call (answered 201)."""
        with self._cond:
            return list(self._state.calls)

    def resource(self, sid: str) -> dict[str, Any]:
        """The JSON the fake holds for a message or call sid."""
        with self._cond:
            return dict(self._state.resources[sid])

    def wait_for(
        self, predicate: Callable[[list[Request]], bool], timeout: float = WAIT_S
    ) -> list[Request]:
        """Block until predicate(all requests so far) is true; returns those requests."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self._state.requests), timeout)
            seen = list(self._state.requests)
        if not ok:
            summary = [(r.kind, r.method, r.to, r.status_code) for r in seen]
            raise TimeoutError(f"fake Twilio: condition not met in {timeout}s; saw {summary}")
        return seen

    def wait_for_count(
        self,
        kind: Kind,
        n: int,
        timeout: float = WAIT_S,
        *,
        to: str | None = None,
        answered: bool = False,
    ) -> list[Request]:
        """Block until at least n create attempts (POSTs) of ``kind`` have arrived.

        Refused attempts count too, since retries after a failure are what tests look for.
        answered=True counts only requests that have had their answer (status_code set).
        Returns the matching requests.
        """

        def matching(reqs: list[Request]) -> list[Request]:
            return [
                r
                for r in reqs
                if r.kind == kind
                and r.method == "POST"
                and (to is None or r.to == to)
                and (r.answered or not answered)
            ]

        seen = self.wait_for(lambda reqs: len(matching(reqs)) >= n, timeout)
        return matching(seen)

    # -- request handling (called from handler threads) --------------------------------------

    def _record(self, req: Request) -> None:
        with self._cond:
            self._state.requests.append(req)
            self._cond.notify_all()

    def _finish(self, req: Request, status: int, sid: str | None = None) -> None:
        with self._cond:
            req.status_code = status
            req.sid = sid
            # After a reset() an in-flight request belongs to nobody's records any more.
            current = any(r is req for r in self._state.requests)
            if status == 201 and sid is not None and current:
                target = self._state.messages if req.kind == "sms" else self._state.calls
                target.append(req)
            self._cond.notify_all()

    def _take_hang(self, to: str, kind: Kind) -> float:
        with self._cond:
            hang = self._state.hangs.get(to)
            if hang is None or (hang.kind is not None and hang.kind != kind):
                return 0.0
            if hang.times is not None:
                hang.times -= 1
                if hang.times <= 0:
                    del self._state.hangs[to]
            return hang.seconds

    def _take_failure(self, to: str, kind: Kind) -> _Failure | None:
        with self._cond:
            failure = self._state.failures.get(to)
            if failure is None or (failure.kind is not None and failure.kind != kind):
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._state.failures[to]
            return failure

    def _create(self, kind: Kind, params: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        sid = _SID_PREFIX[kind] + secrets.token_hex(16)
        now = _now_rfc2822()
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        resource: dict[str, Any]
        if kind == "sms":
            resource = {
                "account_sid": self.account_sid,
                "api_version": API_VERSION,
                "body": one("Body") or "",
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": one("From"),
                "messaging_service_sid": one("MessagingServiceSid"),
                "num_media": str(len(params.get("MediaUrl", []))),
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"{base}/Messages/{sid}/Media.json"},
                "to": one("To"),
                "uri": f"{base}/Messages/{sid}.json",
            }
        else:
            resource = {
                "account_sid": self.account_sid,
                "annotation": None,
                "answered_by": None,
                "api_version": API_VERSION,
                "caller_name": None,
                "date_created": now,
                "date_updated": now,
                "direction": "outbound-api",
                "duration": None,
                "end_time": None,
                "forwarded_from": None,
                "from": one("From"),
                "from_formatted": one("From"),
                "group_sid": None,
                "parent_call_sid": None,
                "phone_number_sid": None,
                "price": None,
                "price_unit": "USD",
                "queue_time": "0",
                "sid": sid,
                "start_time": None,
                "status": "queued",
                "subresource_uris": {
                    "notifications": f"{base}/Calls/{sid}/Notifications.json",
                    "recordings": f"{base}/Calls/{sid}/Recordings.json",
                    "events": f"{base}/Calls/{sid}/Events.json",
                },
                "to": one("To"),
                "to_formatted": one("To"),
                "trunk_sid": None,
                "uri": f"{base}/Calls/{sid}.json",
            }
        with self._cond:
            self._state.resources[sid] = resource
            return dict(resource)


def _missing_param(kind: Kind, params: dict[str, list[str]]) -> tuple[int, str] | None:
    # The required-parameter checks Twilio makes, with its codes, so a service bug that leaves
    # one out fails here as it would in production.
    def has(name: str) -> bool:
        return bool(params.get(name)) and params[name][0] != ""

    if kind == "sms":
        if not has("To"):
            return 21604, "A 'To' phone number is required."
        if not (has("From") or has("MessagingServiceSid")):
            return 21603, "A 'From' phone number is required."
        if not (has("Body") or has("MediaUrl") or has("ContentSid")):
            return 21602, "Message body is required."
    else:
        if not has("To"):
            return 21201, "No 'To' number is specified"
        if not has("From"):
            return 21213, "No 'From' number is specified"
        if not (has("Url") or has("Twiml") or has("ApplicationSid")):
            return 21205, "Url parameter is required."
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeTwilio) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a hanging request leaves a broken pipe behind; that is the
        # scenario under test, not an error worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so no idle keep-alive threads outlive stop().
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the recorded Request list is the log tests look at.
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        arrived = time.monotonic()
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        params = parse_qs(raw.decode("utf-8"), keep_blank_values=True) if method == "POST" else {}

        media = _MEDIA.match(path)
        if media is not None and method == "GET":
            self._media(fake, path, media)
            return
        match = _PATH.match(path)
        kind: Kind = _KINDS.get(match["collection"], "other") if match else "other"
        req = Request(kind=kind, at=arrived, params=params, method=method, path=path)
        fake._record(req)

        if not self._authorized(fake):
            self._error(
                req, 401, 20003, "Authenticate", "Your AccountSid or AuthToken was incorrect."
            )
            return
        if match is None:
            self._not_found(req, path)
            return
        if match["account"] != fake.account_sid:
            # Credentials of one account may not touch another account's resources.
            self._error(req, 401, 20003, "Authenticate")
            return

        sid = match["sid"]
        if sid is not None:
            updating = method == "POST" and kind == "call"  # a call's update (fake.voice)
            if method != "GET" and not updating:
                self._error(req, 405, 20004, "Method not allowed")
                return
            try:
                resource = fake.resource(sid)
            except KeyError:
                self._not_found(req, path)
                return
            if resource["uri"] != path:
                # A call sid under Messages/, or the reverse.
                self._not_found(req, path)
                return
            if updating:
                delay = fake._take_hang(sid, "call")
                if delay > 0 and fake._stopping.wait(delay):
                    self.close_connection = True
                    return
                refused = fake.voice.update(sid, params)
                if refused is not None:
                    code = 21220 if "in-progress" in refused else 20001
                    self._error(req, 400, code, refused)
                    return
                resource = fake.resource(sid)
            self._json(req, 200, resource, sid)
            return
        if method != "POST":
            self._error(req, 405, 20004, "Method not allowed")
            return

        to = req.to or ""
        delay = fake._take_hang(to, kind)
        if delay > 0 and fake._stopping.wait(delay):
            # Shutting down: drop the connection unanswered, as a dead upstream would.
            self.close_connection = True
            return
        failure = fake._take_failure(to, kind)
        if failure is not None:
            message = failure.message or _DEFAULT_MESSAGES.get(failure.status, "Error")
            self._error(req, failure.status, failure.code, message)
            return
        missing = _missing_param(kind, params)
        if missing is not None:
            self._error(req, 400, missing[0], missing[1])
            return
        resource = fake._create(kind, params)
        self._json(req, 201, resource, resource["sid"])

    def _media(self, fake: FakeTwilio, path: str, match: re.Match[str]) -> None:
        """A recording's audio (Twilio asks for the account's credentials when the account
        enforces HTTP auth on media: the fake always does)."""
        req = Request(kind="other", at=time.monotonic(), params={}, method="GET", path=path)
        fake._record(req)
        if not self._authorized(fake) or match["account"] != fake.account_sid:
            self._error(req, 401, 20003, "Authenticate")
            return
        delay = fake._take_hang(match["sid"], "other")
        if delay > 0 and fake._stopping.wait(delay):
            self.close_connection = True
            return
        with fake._cond:
            audio = fake._state.media.get(match["sid"])
        if audio is None:
            self._not_found(req, path)
            return
        fake._finish(req, 200, match["sid"])
        self.send_response(200)
        self.send_header("Content-Type", _MEDIA_TYPES[match["ext"] or ""])
        self.send_header("Content-Length", str(len(audio)))
        self.end_headers()
        self.wfile.write(audio)

    def _authorized(self, fake: FakeTwilio) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return (user, password) == (fake.account_sid, fake.auth_token)

    def _not_found(self, req: Request, path: str) -> None:
        self._error(req, 404, 20404, f"The requested resource {path} was not found")

    def _error(
        self, req: Request, status: int, code: int, message: str, detail: str | None = None
    ) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
        self._json(req, status, _error_body(status, code, message, detail), None, headers)

    def _json(
        self,
        req: Request,
        status: int,
        body: dict[str, Any],
        sid: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode("utf-8")
        # Recorded before writing: a client that already timed out must not lose the record.
        self.server.fake._finish(req, status, sid)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
