"""The FastAPI application: routers, error mapping, metrics, and extensions (console...)."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DataError

from monitor import failures, headers, health
from monitor.alerts.holds import HoldConflict
from monitor.alerts.service import AlertNotFound, HeldByAnother
from monitor.alerts.silence import NotSounding
from monitor.alerts.states import IllegalTransition
from monitor.alerts.views import router as alerts_router
from monitor.audit.views import router as audit_router
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.views import router as devices_router
from monitor.evidence import storage
from monitor.evidence.views import playback as playback_router
from monitor.evidence.views import router as evidence_router
from monitor.incidents.views import reports_router
from monitor.incidents.views import router as incidents_router
from monitor.ingest.views import router as refused_router
from monitor.orgs.views import router as workers_router
from monitor.places.errors import PlaceForbidden, PlaceNotFound, PlaceRefused
from monitor.places.views import router as places_router
from monitor.procedures.service import ChecklistClosed, StepsNotTicked
from monitor.procedures.views import file_router as procedure_file_router
from monitor.procedures.views import router as procedures_router
from monitor.reads.views import router as fleet_router
from monitor.site import routes as site
from monitor.users.throttle import SignInThrottle
from monitor.users.views import router as auth_router
from monitor.visits.views import router as visits_router

log = logging.getLogger(__name__)

EXTENSIONS_GROUP = "vigil.extensions"


class Runner(Protocol):
    """Background work an extension runs while the service runs (escalation's step runner)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def load_extensions(app: FastAPI, context: dict[str, Any]) -> list[str]:
    """Let installed packages (the console, escalation) add themselves to the app.

    The service names none of them: each registers an entry point in `vigil.extensions`,
    a `setup(app, context)` that may return a Runner; `Service` starts and stops those.
    """
    loaded = []
    runners: list[Runner] = app.state.runners
    for ep in entry_points(group=EXTENSIONS_GROUP):
        setup = ep.load()
        runner = setup(app, context)
        if runner is not None:
            runners.append(runner)
        loaded.append(ep.name)
    return loaded


def create_app(settings: Settings, store: Store, *, extensions: bool = True) -> FastAPI:
    app = FastAPI(
        title="Vigil",
        summary="Lone-worker safety and panic-alert monitoring",
        version="1",
        # /docs is the service's own page (monitor/site), working without the internet;
        # ReDoc would load its script from a CDN, so it is not offered.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.evidence_store = storage.from_settings(settings)
    app.state.runners = []
    app.state.sign_in_throttle = SignInThrottle(
        settings.signin_max_failures, settings.signin_window_s
    )
    headers.install(app, settings)
    site.install(app)
    for router in (
        auth_router,
        audit_router,
        alerts_router,
        workers_router,
        devices_router,
        visits_router,
        fleet_router,
        refused_router,
        evidence_router,
        playback_router,
        incidents_router,
        reports_router,
        procedures_router,
        procedure_file_router,
        places_router,
    ):
        app.include_router(router)

    # Service functions raise these; every route answers them the same way.
    @app.exception_handler(AlertNotFound)
    def _not_found(request: Request, exc: AlertNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    def _conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(PlaceNotFound)
    def _no_place(request: Request, exc: PlaceNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(PlaceRefused)
    def _place_refused(request: Request, exc: PlaceRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(PlaceForbidden)
    def _place_forbidden(request: Request, exc: PlaceForbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(IllegalTransition, _conflict)
    app.add_exception_handler(HoldConflict, _conflict)
    app.add_exception_handler(NotSounding, _conflict)
    app.add_exception_handler(ChecklistClosed, _conflict)
    app.add_exception_handler(StepsNotTicked, _conflict)
    app.add_exception_handler(HeldByAnother, _conflict)

    # A value no validator caught but the database cannot store (a NUL character in text,
    # a number out of the column's range): the transaction is rolled back, nothing changed.
    @app.exception_handler(DataError)
    def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        log.warning("refused a value the database cannot store: %s", exc.orig)
        return JSONResponse(
            {"detail": "a value the database cannot store (a NUL character, a number too large)"},
            status_code=422,
        )

    # The store cannot be reached or cannot write (a database outage, a full disk): say so,
    # and that it passes, in the body clients read; what the driver said (addresses, names)
    # goes to the log only.
    def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The driver's message, not SQLAlchemy's, which adds the statement and its values.
        why = getattr(exc, "orig", None) or exc
        log.warning("%s %s: the store is unavailable: %s", request.method, request.url.path, why)
        cause = health.cause_of(exc) or "the database could not complete the request"
        return JSONResponse(
            {"detail": f"the store is unavailable: {cause}; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for kind in failures.TRANSIENT:
        app.add_exception_handler(kind, _store_unavailable)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP. It looks at neither the store nor the broker
        (`/readyz` does), so that an outage of theirs does not get the service restarted."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        responses={503: {"description": "The store cannot write, or an MQTT link is down"}},
    )
    def readyz() -> JSONResponse:
        """Readiness of this replica: its store commits a write and its MQTT links are up."""
        store.probe(max_age=health.PROBE_EVERY_S)
        status = store.health.check()
        return JSONResponse(status.as_json(), status_code=200 if status.ready else 503)

    if extensions:
        names = load_extensions(app, {"settings": settings, "store": store})
        log.info("extensions loaded: %s", ", ".join(names) or "none")
    return app
