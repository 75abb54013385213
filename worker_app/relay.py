"""The MQTT-over-WebSocket relay: `/mqtt` on the service's own origin, a byte pump to the
broker's listener for devices, which authenticates each app and applies its access rules.

Browsers cannot open TCP connections, and Debian's Mosquitto has no WebSocket listener. The
relay takes the app's binary frames as they come and writes them to one TCP connection to
the broker, and writes back what the broker sends. It reads no packet, so it grants nothing:
the app's CONNECT (its device id and secret) goes to the broker as sent, and what the broker
refuses stays refused. The target is the configured listener only; nothing in the request
(path, query, headers) can change it. Payloads are never logged (CONNECT carries a password).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import ssl
import time
from collections import Counter
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from prometheus_client import Counter as CounterMetric
from prometheus_client import Gauge

from monitor.config import Settings

log = logging.getLogger(__name__)

# The WebSocket subprotocol of MQTT 3.1.1 and 5 (what mqtt.js and paho ask for).
SUBPROTOCOL = "mqtt"
# The most read from the broker at once: with the websocket's own send waiting while the
# browser is slow, this (and one websocket message the other way) is what a socket holds.
CHUNK = 64 * 1024
BROKER_CONNECT_S = 5.0
BROKER_CLOSE_S = 5.0
WARN_EVERY_S = 60.0
# RFC 6455 close codes.
NORMAL = 1000
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011

OPEN = Gauge("vigil_relay_connections", "Worker apps relayed to the broker now")
REFUSED = CounterMetric(
    "vigil_relay_refused_total",
    "Relay connections refused before reaching the broker",
    ["reason"],
)

# (code, reason) to close the websocket with; None when the app has gone already.
Ending = tuple[int, str] | None


class Relay:
    """The relay's target, its limits, and how many connections each address holds."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.mqtt_device_host
        self.port = settings.mqtt_device_port
        self.tls = (
            ssl.create_default_context(cafile=settings.mqtt_device_tls_ca)
            if settings.mqtt_device_tls_ca
            else None
        )
        self.max_connections = settings.relay_max_connections
        self.max_per_address = settings.relay_max_per_address
        self.login_s = settings.relay_login_s
        self.connections = 0
        self.per_address: Counter[str] = Counter()
        self._broker_down = False
        self._warned_at: dict[str, float] = {}

    async def serve(self, ws: WebSocket) -> None:
        if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
            # Refused before the handshake: the client gets HTTP 403 and no WebSocket.
            REFUSED.labels("subprotocol").inc()
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                await ws.close()
            return
        address = ws.client.host if ws.client else "unknown"
        if self.connections >= self.max_connections:
            await self._refuse(ws, "busy", "the relay is full: try again shortly")
            return
        if self.per_address[address] >= self.max_per_address:
            await self._refuse(ws, "address", "too many connections from this address")
            return
        # Counted from here, before anything is awaited: handshakes in progress count too.
        self.connections += 1
        self.per_address[address] += 1
        OPEN.inc()
        try:
            await self._relay(ws)
        finally:
            self.connections -= 1
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]
            OPEN.dec()

    async def _relay(self, ws: WebSocket) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls, limit=CHUNK),
                BROKER_CONNECT_S,
            )
        except (OSError, TimeoutError) as err:
            if not self._broker_down:
                log.warning(
                    "relay: the broker's listener for devices, %s:%s, cannot be reached: %s",
                    self.host,
                    self.port,
                    err,
                )
            self._broker_down = True
            await self._refuse(ws, "broker", "the broker cannot be reached: try again shortly")
            return
        if self._broker_down:
            log.info("relay: the broker's listener for devices is reachable again")
            self._broker_down = False
        ending: Ending = None
        try:
            await ws.accept(subprotocol=SUBPROTOCOL)
            ending = await _pump(ws, reader, writer, self.login_s)
        except (WebSocketDisconnect, OSError, RuntimeError):
            ending = None  # the app left during the handshake
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), BROKER_CLOSE_S)
            if ending is not None:
                with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                    await ws.close(*ending)

    async def _refuse(self, ws: WebSocket, why: str, reason: str) -> None:
        """Accept, then close at once with 1013 (try again later) and the reason. A close
        before accepting reaches the browser as a bare HTTP 403, which says nothing; and
        uvicorn logs an HTTP denial response as an error of the application."""
        REFUSED.labels(why).inc()
        if why in ("busy", "address"):
            self._warn(why, "relay: refused a connection (%s); see VIGIL_RELAY_MAX_*", why)
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await ws.accept(subprotocol=SUBPROTOCOL)
            await ws.close(TRY_AGAIN_LATER, reason)

    def _warn(self, key: str, message: str, *args: object) -> None:
        # A client retrying in a loop must not fill the log: once a minute per kind.
        now = time.monotonic()
        if now - self._warned_at.get(key, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned_at[key] = now
            log.warning(message, *args)


async def _pump(
    ws: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, login_s: float
) -> Ending:
    """Copy bytes both ways until either side ends; then stop the other direction too."""
    tasks = {
        asyncio.create_task(_to_broker(ws, writer)),
        asyncio.create_task(_to_app(reader, ws, login_s)),
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _to_broker(ws: WebSocket, writer: asyncio.StreamWriter) -> Ending:
    # One websocket message at a time, and the next only once the broker has taken this one
    # (drain): a fast app waits for the broker instead of filling this process's memory.
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes")
        if data is None:
            return UNSUPPORTED_DATA, "MQTT travels in binary frames"
        try:
            writer.write(data)
            await writer.drain()
        except OSError:
            return INTERNAL_ERROR, "lost the connection to the broker"


async def _to_app(reader: asyncio.StreamReader, ws: WebSocket, login_s: float) -> Ending:
    # The broker says nothing until it answers CONNECT: a connection that has heard nothing
    # after `login_s` never logged in, and only holds a place (each device's credentials hold
    # one at most, as its connections replace each other; silent ones could hold them all).
    wait: float | None = login_s
    while True:
        try:
            data = await asyncio.wait_for(reader.read(CHUNK), wait)
        except TimeoutError:
            return POLICY_VIOLATION, "the broker has not answered: send CONNECT first"
        except OSError:
            return INTERNAL_ERROR, "lost the connection to the broker"
        wait = None
        if not data:
            return NORMAL, "the broker closed the connection"
        try:
            await ws.send_bytes(data)
        except (WebSocketDisconnect, OSError, RuntimeError):
            return None


def _room_for(connections: int) -> None:
    """Each relayed app holds two descriptors (its websocket and its broker connection): raise
    the soft limit toward the hard one, so that the relay's own cap is what refuses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * connections + 1024
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def install(app: FastAPI, context: dict[str, Any]) -> None:
    settings: Settings = context["settings"]
    if settings.relay_max_connections == 0:
        return  # turned off: the app uses a broker's own WebSocket listener (app_mqtt_url)
    relay = Relay(settings)
    _room_for(settings.relay_max_connections)
    app.state.relay = relay

    @app.websocket("/mqtt")
    async def mqtt_relay(ws: WebSocket) -> None:
        await relay.serve(ws)
