"""Adds the gateways to the service's app: each part installs its own routes."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fastapi import FastAPI

# Each module has `install(app, context)`; context holds "settings" and "store".
PARTS: tuple[str, ...] = ("owntracks", "osmand", "line")


def setup(app: FastAPI, context: dict[str, Any]) -> None:
    for name in PARTS:
        import_module(f"gateways.{name}").install(app, context)
