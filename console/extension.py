"""Adds the console to the service's app: the websocket hub and the static UI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def setup(app: FastAPI, context: dict[str, Any]) -> None:
    from console.hub import Hub, install
    from console.meta import router

    app.include_router(router)
    install(app, Hub(context["store"], context["settings"]))
