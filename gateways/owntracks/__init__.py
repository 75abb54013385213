"""OwnTracks (owntracks.org): the app's JSON over MQTT (`owntracks/<id>/<id>`) and in its HTTP
mode, as positions, offline and help reports of the device (and a region's transition as a
place in the worker's open visit), and `locate` as `reportLocation`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateways.owntracks.http import router
from gateways.owntracks.mqtt import OwnTracksMqtt


def install(app: FastAPI, context: dict[str, Any]) -> None:
    app.include_router(router(context["store"]))
    app.state.runners.append(OwnTracksMqtt(app, context["settings"], context["store"]))
