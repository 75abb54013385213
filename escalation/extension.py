"""Adds escalation to the service: its API, Twilio's webhooks, and the step runner."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from escalation.engine import Engine
from escalation.states import CALL_LABELS, PLAN_LABELS, STATUS_LABELS, STEP_LABELS
from escalation.timeline import LABELS
from monitor.alerts import labels


def setup(app: FastAPI, context: dict[str, Any]) -> Engine:
    from escalation import call_views, policy_views
    from escalation.inbound import router as inbound
    from escalation.views import alert_router
    from escalation.views import router as api

    app.include_router(api)
    app.include_router(policy_views.router)
    app.include_router(alert_router)
    app.include_router(inbound)
    app.include_router(call_views.api)
    app.include_router(call_views.webhooks)
    labels.add_entries(LABELS)
    labels.add_table("status", STATUS_LABELS)
    labels.add_table("call", CALL_LABELS)
    labels.add_table("step", STEP_LABELS)
    labels.add_table("plan", PLAN_LABELS)
    engine = Engine(context["store"], context["settings"])
    app.state.escalation = engine
    return engine
