"""Adds escalation to the service: its API, Twilio's webhooks, and the step runner."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from escalation.engine import Engine


def setup(app: FastAPI, context: dict[str, Any]) -> Engine:
    from escalation.inbound import router as inbound
    from escalation.views import router as api

    app.include_router(api)
    app.include_router(inbound)
    engine = Engine(context["store"], context["settings"])
    app.state.escalation = engine
    return engine
