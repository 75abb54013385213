"""Calls from an alert: the API the console places them with, and the Twilio webhooks that
bring each call's TwiML, its legs' news and its recording (signed and never replayed, as
every webhook in escalation.inbound)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from escalation import calls
from escalation.inbound import XML, SignedForm, first_time, sid_of
from escalation.models import Call, CallOut, TwilioRequestSeen
from escalation.providers import Providers
from escalation.recordings import FetchFailed
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.deps import (
    CurrentUser,
    EvidenceStoreDep,
    ReadSessionDep,
    RowId,
    ScopeDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from monitor.evidence.service import EvidenceRefused
from monitor.evidence.storage import StoreUnavailable

api = APIRouter(prefix="/api/v1/alerts", tags=["calls"])
webhooks = APIRouter(prefix="/twilio/calls", tags=["twilio"])


class CallIn(BaseModel):
    to: str = Field(min_length=1, max_length=200, description='"worker" or a contact\'s name')


class TargetOut(BaseModel):
    to: str
    kind: str
    name: str
    phone: str
    refused: str | None


class CallsOut(BaseModel):
    """Whom the signed-in operator may call about the alert, and the calls placed so far."""

    why_not: str | None  # why this operator cannot place calls at all (no phone, no Twilio)
    operator_phone: str
    recording: bool  # whether calls are recorded (VIGIL_CALL_RECORDING)
    targets: list[TargetOut]
    calls: list[CallOut]


def _providers(request: Request) -> Providers:
    providers: Providers = request.app.state.escalation.providers
    return providers


@api.get("/{alert_id}/calls")
def list_calls(
    alert_id: RowId,
    db: ReadSessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    settings: SettingsDep,
    request: Request,
) -> CallsOut:
    alerts.check_in_scope(db, alert_id, scope)
    alert = alerts.get(db, alert_id)
    placed = db.scalars(select(Call).where(Call.alert_id == alert_id).order_by(Call.id))
    return CallsOut(
        why_not=calls.why_not(settings, _providers(request), user),
        operator_phone=user.phone,
        recording=settings.call_recording,
        targets=[TargetOut(**t.__dict__) for t in calls.targets(db, alert)],
        calls=[CallOut.model_validate(c) for c in placed],
    )


@api.post("/{alert_id}/calls", status_code=201)
def place_call(
    alert_id: RowId,
    body: CallIn,
    store: StoreDep,
    scope: ScopeDep,
    user: CurrentUser,
    settings: SettingsDep,
    request: Request,
) -> CallOut:
    """Ring the operator's own phone; once they answer, Twilio rings `to` and bridges them.
    409 for the worker under duress, an operator without a phone, or no Twilio."""
    with store.session() as db:
        alerts.check_in_scope(db, alert_id, scope)
    try:
        call_id = calls.place(
            store, _providers(request), settings, alert_id=alert_id, user=user, to=body.to
        )
    except calls.CallRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    with store.session() as db:
        return CallOut.model_validate(db.get(Call, call_id))


def _locked(db: Session, call_id: int) -> tuple[Alert, Call]:
    try:
        return calls.locked(db, call_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@webhooks.post("/{call_id}/answer", response_class=Response)
def answer(call_id: RowId, form: SignedForm, db: SessionDep, settings: SettingsDep) -> Response:
    """The operator answered: Twilio asks what to do with the call."""
    sid = sid_of(form, "CallSid")
    first_time(db, f"call-answer:{sid}")
    alert, call = _locked(db, call_id)
    if call.operator_sid not in (None, sid):
        raise HTTPException(409, "this is not the operator's leg of the call")
    return Response(calls.answered(db, alert, call, sid, settings), media_type=XML)


@webhooks.post("/{call_id}/status", status_code=204, response_class=Response)
def status(
    call_id: RowId,
    form: SignedForm,
    db: SessionDep,
    leg: Annotated[Literal["operator", "other"], Query()],
) -> Response:
    """A leg's news: ringing, answered, and its end (completed, busy, no-answer...)."""
    sid = sid_of(form, "CallSid")
    word = form.get("CallStatus", "").lower()[:16]
    if not word:
        raise HTTPException(422, "no CallStatus was posted")
    first_time(db, f"call-status:{sid}:{word}")
    alert, call = _locked(db, call_id)
    duration = form.get("CallDuration", "")[:9]
    if leg == "operator":
        if call.operator_sid not in (None, sid):
            raise HTTPException(409, "this is not the operator's leg of the call")
        call.operator_sid = call.operator_sid or sid
        calls.operator_status(db, alert, call, word, duration)
    else:
        if form.get("ParentCallSid") != call.operator_sid or call.other_sid not in (None, sid):
            raise HTTPException(409, "this is not the other leg of the call")
        call.other_sid = sid
        calls.other_status(db, alert, call, word, duration)
    return Response(status_code=204)


@webhooks.post("/{call_id}/dialled", response_class=Response)
def dialled(call_id: RowId, form: SignedForm, db: SessionDep) -> Response:
    """The <Dial> ended (Twilio's action): how, and what the operator hears last."""
    sid = sid_of(form, "CallSid")
    first_time(db, f"call-dialled:{sid}")
    alert, call = _locked(db, call_id)
    if call.operator_sid != sid:
        raise HTTPException(409, "this is not the operator's leg of the call")
    if form.get("DialCallSid"):
        call.other_sid = call.other_sid or sid_of(form, "DialCallSid")
    word = form.get("DialCallStatus", "").lower()[:16]
    twiml = calls.dialled(db, alert, call, word, form.get("DialCallDuration", "")[:9])
    return Response(twiml, media_type=XML)


@webhooks.post("/{call_id}/recording", status_code=204, response_class=Response)
def recording(
    call_id: RowId,
    form: SignedForm,
    store: StoreDep,
    evidence: EvidenceStoreDep,
    settings: SettingsDep,
) -> Response:
    """The conversation's recording is ready: fetched and kept as the alert's evidence.
    The news is claimed (committed) before anything is fetched, so that the same news twice
    at once is kept once: the second is a replay (409). Claimed and not kept (an unknown
    call, a fetch that failed...), it is let go, so that the same news again may try."""
    recording_sid = sid_of(form, "RecordingSid")
    key = f"recording:{recording_sid}"
    with store.begin() as db:
        first_time(db, key)
    try:
        calls.keep_recording(
            store,
            evidence,
            settings,
            call_id=call_id,
            recording_sid=recording_sid,
            call_sid=sid_of(form, "CallSid"),
            status=form.get("RecordingStatus", "")[:16],
            duration_s=form.get("RecordingDuration", "")[:9],
        )
    except Exception as exc:
        with store.begin() as db:
            db.execute(delete(TwilioRequestSeen).where(TwilioRequestSeen.key == key))
        if isinstance(exc, LookupError):
            raise HTTPException(404, str(exc)) from exc
        if isinstance(exc, FetchFailed):
            raise HTTPException(502, f"the recording was not fetched: {exc}") from exc
        if isinstance(exc, StoreUnavailable):
            raise HTTPException(503, "the evidence store is unavailable") from exc
        if isinstance(exc, EvidenceRefused):
            raise HTTPException(422, str(exc)) from exc
        raise
    return Response(status_code=204)
