"""The websocket hub: pushes alert changes to every signed-in console as they happen.

A console signs in with its first message, `{"token": "<access token>"}`, never with the
token in the URL: URLs end up in access logs and proxies' logs, and the token is good for
hours. Any replica can check it (it is signed with the shared secret key), so nothing needs
to be kept between an HTTP request and the websocket.

Each console hears only of alerts within its user's scope (organisation or team). Each
browser has its own bounded send queue, so a slow or dead one never delays the others;
events carry a sequence number, and a console that reconnects with `since=<seq>` gets what it
missed from a ring buffer (or a fresh snapshot when it was away too long).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.alerts.states import ACTIVE_STATES
from monitor.config import Settings
from monitor.db import Store
from monitor.deps import CurrentUser
from monitor.events import Event
from monitor.health import Status, cause_of
from monitor.orgs.scope import Scope
from monitor.security import read_token
from monitor.users.models import User
from monitor.users.service import signs_in

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
QUEUE_LIMIT = 1000
HISTORY = 5000
ACTIVE_VALUES = frozenset(s.value for s in ACTIVE_STATES)
PING_S = 20.0
# How often an open console's user is looked up again: a user disabled, or moved to another
# organisation, stops getting what they may no longer see within this long.
RECHECK_S = 30.0
# How long a new socket has to send its token, and how long that first message may be.
SIGN_IN_WAIT_S = 10.0
SIGN_IN_MAX_CHARS = 4096


@dataclass(frozen=True)
class Sent:
    """An event as sent, with what decides who may hear it."""

    seq: int
    text: str
    org_id: int | None
    team_id: int | None
    about_alert: bool

    def for_scope(self, scope: Scope) -> bool:
        if scope.service_wide:
            return True
        return self.about_alert and scope.admits(self.org_id, self.team_id)


class Client:
    def __init__(self, ws: WebSocket, token: str, expires: float, scope: Scope) -> None:
        self.ws = ws
        self.token = token
        self.expires = expires
        self.scope = scope
        self.recheck_at = time.monotonic() + RECHECK_S
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False


class Hub:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.clients: set[Client] = set()
        self.history: deque[Sent] = deque(maxlen=HISTORY)
        self._seq = itertools.count(1)
        self.last_seq = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        # Sequence numbers restart with the process; a console that saw another epoch
        # gets a snapshot rather than a catch-up it cannot trust.
        self.epoch = secrets.token_hex(4)

    # Called on the committing thread: hand over to the event loop, never block.
    def on_event(self, event: Event) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._fan_out, event)

    # Called on whichever thread noticed that readiness changed (a writer, the scheduler).
    def on_health(self, status: Status) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._tell_service, service_text(status))

    def _tell_service(self, text: str) -> None:
        for c in list(self.clients):
            try:
                c.queue.put_nowait(text)
            except asyncio.QueueFull:
                c.overflowed = True  # the snapshot that replaces the backlog comes with it

    def _fan_out(self, event: Event) -> None:
        seq = next(self._seq)
        self.last_seq = seq
        data = event.data()
        alert = data.get("alert")
        if isinstance(alert, dict) and alert.get("state") not in ACTIVE_VALUES:
            # Once an alert is over, where the worker was is no business of a console
            # (docs/privacy.md); the incident's page still shows it to whom it may.
            data["alert"] = alert = {**alert, "lat": None, "lon": None, "acc": None}
        text = json.dumps(
            {
                "seq": seq,
                "epoch": self.epoch,
                "kind": event.kind,
                "at": event.at.isoformat(),
                **data,
            },
            default=str,
        )
        # An event carries the whole alert, or else (a position, a clip) its organisation
        # and team; one about no alert in particular is for the whole service's people only.
        about = alert if isinstance(alert, dict) else data
        sent = Sent(seq, text, about.get("org_id"), about.get("team_id"), "org_id" in about)
        self.history.append(sent)
        for c in list(self.clients):
            if not sent.for_scope(c.scope):
                continue
            try:
                c.queue.put_nowait(text)
            except asyncio.QueueFull:
                # A console this far behind is sent a fresh snapshot instead of a backlog.
                c.overflowed = True

    def snapshot(self, seq: int, scope: Scope) -> str:
        """Active alerts now. `seq` is read on the event loop before the query, so any change
        committed meanwhile comes after it as an event (applying one twice is harmless)."""
        with self.store.session() as db:
            rows = db.scalars(
                select(Alert)
                .where(
                    rules.is_open_sql(),
                    scope.covers(Alert.worker_id, Alert.org_id),
                )
                .order_by(Alert.priority, Alert.raised_at)
            )
            active = [a.model_dump(mode="json") for a in alerts.to_out_many(db, rows.all())]
        return json.dumps({"seq": seq, "epoch": self.epoch, "kind": "snapshot", "alerts": active})

    def session_for(self, token: str) -> tuple[float, Scope] | None:
        """When the token expires and what its user may see, if the token is valid and its
        user active; else None."""
        claims = read_token(self.settings.secret_key, token)
        if claims is None:
            return None
        with self.store.session() as db:
            user = db.get(User, claims.user_id)
            if user is None or not signs_in(user, claims):
                return None
            return claims.expires, Scope(user.org_id, user.team_id)

    async def _still_signed_in(self, client: Client) -> bool:
        client.recheck_at = time.monotonic() + RECHECK_S
        try:
            session = await asyncio.to_thread(self.session_for, client.token)
        except Exception as err:
            if cause_of(err) is None:
                raise
            return True  # the store cannot say now (the banner says why): asked again later
        if session is None:
            await client.ws.close(code=4401, reason="signed out")
            return False
        client.scope = session[1]
        return True

    async def serve(self, ws: WebSocket) -> None:
        self.loop = asyncio.get_running_loop()
        # Accept first: a close before accepting reaches the browser as a bare HTTP 403,
        # and the console could not tell "sign in again" from "network trouble".
        await ws.accept()
        if "token" in ws.query_params:
            # Refused even when valid, so that no client keeps putting tokens in URLs.
            await ws.close(code=4401, reason="send the token in the first message, not the URL")
            return
        try:
            token = await asyncio.wait_for(_token_sent(ws), SIGN_IN_WAIT_S)
        except TimeoutError:
            token = None
        except WebSocketDisconnect:
            return
        session = None if token is None else await asyncio.to_thread(self.session_for, token)
        if token is None or session is None:
            await ws.close(code=4401, reason="not signed in")
            return
        client = Client(ws, token, *session)
        self.clients.add(client)
        try:
            since = ws.query_params.get("since")
            if ws.query_params.get("epoch") != self.epoch:
                since = None
            await self._catch_up(client, since)
            await ws.send_text(service_text(self.store.health.status()))
            sender = asyncio.create_task(self._send(client))
            try:
                while True:
                    msg = await ws.receive_text()
                    if msg == "ping":
                        await ws.send_text('{"kind":"pong"}')
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(client)

    async def _catch_up(self, client: Client, since: str | None) -> None:
        """Send what a (re)connecting console lacks, before the live queue: what it missed,
        from the ring buffer, or else a snapshot. Live events queued meanwhile may repeat
        some of it; the console ignores sequence numbers it has seen."""
        if since is not None and since.isdigit():
            after = int(since)
            if after == self.last_seq:
                return
            if after < self.last_seq and self.history and self.history[0].seq <= after + 1:
                for sent in list(self.history):
                    if sent.seq > after and sent.for_scope(client.scope):
                        await client.ws.send_text(sent.text)
                return
        await client.ws.send_text(
            await asyncio.to_thread(self.snapshot, self.last_seq, client.scope)
        )

    async def _send(self, client: Client) -> None:
        while True:
            if time.time() >= client.expires:
                await client.ws.close(code=4401, reason="session expired")
                return
            if time.monotonic() >= client.recheck_at and not await self._still_signed_in(client):
                return
            try:
                # Wake for the token's expiry too, so an expired session ends on time.
                wait = min(PING_S, RECHECK_S, max(0.05, client.expires - time.time()))
                text = await asyncio.wait_for(client.queue.get(), wait)
            except TimeoutError:
                text = '{"kind":"heartbeat"}'
            if client.overflowed:
                client.overflowed = False
                while not client.queue.empty():
                    client.queue.get_nowait()
                await client.ws.send_text(service_text(self.store.health.status()))
                text = await asyncio.to_thread(self.snapshot, self.last_seq, client.scope)
            await client.ws.send_text(text)


async def _token_sent(ws: WebSocket) -> str | None:
    """The token in the socket's first message, `{"token": "..."}`; None if that message is
    anything else."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if not isinstance(text, str) or len(text) > SIGN_IN_MAX_CHARS:
        return None
    try:
        sent = json.loads(text)
    except ValueError:
        return None
    token = sent.get("token") if isinstance(sent, dict) else None
    return token if isinstance(token, str) else None


def service_text(status: Status) -> str:
    """The `service` message: whether this replica can store alerts, and if not, why (the
    console shows it as a banner)."""
    return json.dumps({"kind": "service", "ready": status.ready, "detail": status.detail})


def install(app: FastAPI, hub: Hub) -> None:
    # Other replicas' changes too (relayed over PostgreSQL): operators see every alert.
    hub.store.bus.subscribe(hub.on_event, "alert.", remote=True)
    hub.store.health.subscribe(hub.on_health)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await hub.serve(ws)

    @app.get("/api/v1/console/config", tags=["console"])
    def console_config(user: CurrentUser) -> dict[str, str]:
        """What the console needs to draw maps."""
        return {
            "tiles_url": hub.settings.map_tiles_url,
            "attribution": hub.settings.map_attribution,
        }

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.hub = hub
