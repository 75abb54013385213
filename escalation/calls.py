"""Calls an operator places from an alert: Twilio rings the operator's own phone, and once
they answer bridges them to the worker's phone or one of the alert's contacts. Each change of
the call is written to the alert's timeline; where calls are recorded (VIGIL_CALL_RECORDING)
the recording is kept as the alert's evidence, with its sha256."""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from escalation import call_twiml, delivery
from escalation.models import Call, Contact, Escalation, RecipientKind
from escalation.providers import Failed, Providers, Retry
from escalation.recordings import FetchFailed, fetch
from escalation.snapshots import context
from escalation.states import CALL_OVER, CallState
from escalation.timeline import EntryKind
from monitor.alerts import service as alerts
from monitor.alerts.labels import span
from monitor.alerts.models import Alert
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.events import Kind
from monitor.evidence.service import keep_for_alert
from monitor.evidence.storage import EvidenceStore
from monitor.phones import dialable
from monitor.users.models import User

WORKER = RecipientKind.WORKER.value
# A second press of the same button within this time is the same call, not a second one.
SAME_CALL_S = 60


class CallRefused(Exception):
    """The call cannot be placed; `status` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Target:
    """Someone the operator may call about the alert, and why not, if they may not."""

    to: str  # "worker", or the contact's name
    kind: str  # RecipientKind
    name: str
    phone: str
    refused: str | None = None


# Why a number may not be rung: the one place the words are, for the API's 409, the
# console's button and the timeline.
UNDER_DURESS = (
    "Under duress: whoever is with the worker would hear their phone ring. "
    "Vigil never calls the worker's phone while a duress alert is open."
)
# What the operator hears when a call to a worker now under duress is stopped.
DURESS_SAID = "This alert is now under duress. The worker's phone will not be called. Goodbye."


def worker_number(db: Session, alert: Alert) -> str:
    """The worker's phone as Vigil dials it (E.164), or "" if they have none that is one."""
    return dialable(delivery.worker_phone(db, alert)) or ""


def reaches_silenced_worker(db: Session, alert: Alert, kind: str, number: str) -> bool:
    """Whether ringing `number` (the worker's, or a contact's that may be the worker's own)
    would ring the phone of a worker under duress: delivery.aimed_at_worker and
    may_reach_worker, the rules every SMS and call of the escalation goes by."""
    return delivery.aimed_at_worker(
        kind, number, worker_number(db, alert)
    ) and not delivery.may_reach_worker(db, alert)


def targets(db: Session, alert: Alert) -> list[Target]:
    """The worker, then the alert's contacts with a phone: those its escalation names
    (backup staff, named contacts) and the backup staff of the worker's team. Any of them
    whose number is the worker's is refused while the worker may not be reached."""
    ctx = context(db, alert)
    found: list[Target] = []
    if ctx.worker is not None and ctx.worker.phone:
        number = dialable(ctx.worker.phone)
        found.append(
            Target(
                WORKER,
                WORKER,
                ctx.worker.name,
                number or ctx.worker.phone,
                None if number else f"the worker's phone {ctx.worker.phone!r} is not a number",
            )
        )
    named: dict[str, str] = {}  # contact name -> RecipientKind, in the policy's order
    snapshot = db.scalar(select(Escalation.snapshot).where(Escalation.alert_id == alert.id))
    for step in snapshot.steps if snapshot is not None else ():
        for r in step.to:
            if r.kind != RecipientKind.WORKER:
                named.setdefault(r.name, r.kind.value)
    contacts = {c.name: c for c in db.scalars(select(Contact).order_by(Contact.name))}
    for c in contacts.values():
        if ctx.team is not None and ctx.team in c.backup_for:
            named.setdefault(c.name, RecipientKind.BACKUP.value)
    for name, kind in named.items():
        contact = contacts.get(name)
        number = dialable(contact.phone) if contact is not None else None
        if number:  # a webhook or an alarm-receiving centre is not called
            found.append(Target(name, kind, name, number))
    return [
        replace(t, refused=UNDER_DURESS)
        if reaches_silenced_worker(db, alert, t.kind, t.phone)
        else t
        for t in found
    ]


def why_not(settings: Settings, providers: Providers, user: User) -> str | None:
    """Why this operator cannot place calls at all, or None."""
    if not providers.twilio_configured:
        return (
            "Calls from the console need Twilio (VIGIL_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and "
            "_FROM_NUMBER): dial the number from your own phone."
        )
    if not user.phone:
        return (
            f"You have no phone number on your user ({user.username}): an administrator "
            f"sets it with `vigil user set-phone {user.username} +44...`."
        )
    return None


def _label(call: Call) -> str:
    who = (
        "the worker"
        if call.to_kind == WORKER
        else "backup staff"
        if call.to_kind == "backup"
        else ""
    )
    return f"{call.to_name}, {who}" if who else call.to_name


def tell(db: Session, alert: Alert, call: Call, status: str, text: str) -> None:
    """One change of the call, in the alert's timeline and on the call's row."""
    call.detail = text
    alerts.record(
        db,
        alert,
        EntryKind.CALL,
        f"user:{call.placed_by}",
        f"Call from {call.placed_by} to {call.to_name} ({call.to_phone}): {text}",
        call=call.id,
        status=status,
    )
    alerts.announce(db, Kind.ALERT_ESCALATION, alert)


def place(
    store: Store, providers: Providers, settings: Settings, *, alert_id: int, user: User, to: str
) -> int:
    """Ring the operator's phone for a call to `to` ("worker" or a contact's name); the
    call's id. Raises CallRefused. The row and its first timeline entry are committed
    before Twilio is asked, so Twilio's first news about the call always finds them."""
    reason = why_not(settings, providers, user)
    if reason is not None:
        # Not set up for calls (no Twilio, no phone of the operator's): a state of the set-up
        # to put right, not a fault of the service, so 409 with what to do.
        raise CallRefused(409, reason)
    with store.begin() as db:
        alert = alerts.get(db, alert_id, for_update=True)
        target = next((t for t in targets(db, alert) if t.to == to), None)
        if target is None:
            raise CallRefused(422, f"{to!r} is not the worker nor a contact of this alert")
        if target.refused:
            raise CallRefused(409, target.refused)
        recent = db.scalar(
            select(Call.id).where(
                Call.alert_id == alert_id,
                Call.placed_by == user.username,
                Call.to_phone == target.phone,
                Call.state.not_in([s.value for s in CALL_OVER]),
                Call.created_at > utcnow() - timedelta(seconds=SAME_CALL_S),
            )
        )
        if recent is not None:
            raise CallRefused(409, f"your call to {target.name} is already under way")
        call = Call(
            alert_id=alert_id,
            placed_by=user.username,
            operator_phone=user.phone,
            to_kind=target.kind,
            to_name=target.name,
            to_phone=target.phone,
            recorded=settings.call_recording,
        )
        db.add(call)
        db.flush()
        tell(
            db,
            alert,
            call,
            "ringing",
            f"ringing {user.username} on {user.phone}"
            + (" (the conversation will be recorded)" if call.recorded else ""),
        )
        call_id = call.id
    to_url = call_twiml.urls(settings.public_url, call_id)
    try:
        sid = providers.bridge_call(user.phone, to_url["answer"], to_url["operator_status"])
    except (Failed, Retry) as exc:
        with store.begin() as db:
            alert, call = locked(db, call_id)
            call.state, call.ended_at = CallState.FAILED.value, utcnow()
            tell(db, alert, call, "failed", f"not placed: {exc}")
        raise CallRefused(502, f"Twilio did not place the call: {exc}") from exc
    with store.begin() as db:
        alert, call = locked(db, call_id)
        call.operator_sid = call.operator_sid or sid
        stopped = call.state in CALL_OVER  # by a duress while Twilio was being asked
    if stopped:  # if Twilio does not end it, its answer finds the call over (answered)
        with suppress(Failed, Retry):
            providers.end_call(sid)
    return call_id


def locked(db: Session, call_id: int) -> tuple[Alert, Call]:
    """The call and its alert, locked (the alert first, as every writer of its timeline)."""
    alert_id = db.scalar(select(Call.alert_id).where(Call.id == call_id))
    if alert_id is None:
        raise LookupError(f"no call {call_id}")
    alert = alerts.get(db, alert_id, for_update=True)
    call = db.get(Call, call_id, with_for_update=True, populate_existing=True)
    assert call is not None
    return alert, call


def _end(call: Call, state: CallState, duration_s: int | None = None) -> None:
    call.state, call.ended_at = state.value, utcnow()
    if duration_s is not None:
        call.duration_s = duration_s
    elif call.connected_at is not None:
        call.duration_s = int((call.ended_at - call.connected_at).total_seconds())


# Twilio's final words for a leg that was never bridged, as the call's state and the words
# the timeline uses for who did not pick up.
_UNANSWERED = {
    "busy": (CallState.BUSY, "busy", "{who}'s line was busy"),
    "no-answer": (CallState.NO_ANSWER, "no-answer", "{who} did not answer"),
    "failed": (CallState.FAILED, "failed", "the call to {who} failed"),
    "canceled": (CallState.CANCELLED, "cancelled", "the call to {who} was cancelled"),
}


def answered(db: Session, alert: Alert, call: Call, call_sid: str, settings: Settings) -> str:
    """The operator answered: the TwiML that tells them who is rung, and rings them. The
    worker's phone is looked at again now: a duress since the call was placed stops it."""
    call.operator_sid = call.operator_sid or call_sid
    if call.state != CallState.CALLING_OPERATOR.value:
        return call_twiml.say_and_hang_up("This call has already ended. Goodbye.")
    # By the number dialled, not whom it was placed for: a contact may have the worker's.
    if reaches_silenced_worker(db, alert, call.to_kind, call.to_phone):
        _end(call, CallState.CANCELLED)
        tell(
            db,
            alert,
            call,
            "cancelled",
            f"{call.placed_by} answered; not connected. {UNDER_DURESS}",
        )
        return call_twiml.say_and_hang_up(DURESS_SAID)
    call.state = CallState.DIALLING.value
    tell(db, alert, call, "answered", f"{call.placed_by} answered; ringing {call.to_name}")
    return call_twiml.connect(
        settings.public_url,
        call.id,
        alert_id=alert.id,
        who=_label(call),
        number=call.to_phone,
        caller_id=settings.twilio_from_number,
        record=call.recorded,
    )


# A call still ringing a phone: the operator's own, or (once they answered) the other's.
_RINGING = (CallState.CALLING_OPERATOR.value, CallState.DIALLING.value)


def stop_ringing_worker(store: Store, providers: Providers, alert_id: int) -> list[int]:
    """The alert turned to duress: every call of its device's alerts that is still ringing
    and would reach the worker's phone (by the number dialled) is ended through Twilio, so
    the worker's phone stops ringing at once rather than at the <Dial>'s timeout. Each is
    cancelled in its row and timeline before Twilio is asked, so that Twilio's news of its
    end finds it over; the operator hears why. Connected calls are left: the worker
    answered, and is already talking. The ids of the calls stopped."""
    with store.session() as db:
        device_id = alerts.get(db, alert_id).device_id
        candidates = db.scalars(
            select(Call.id)
            .join(Alert, Alert.id == Call.alert_id)
            .where(Alert.device_id == device_id, Call.state.in_(_RINGING))
            .order_by(Call.id)
        ).all()
    stopped = []
    for call_id in candidates:
        with store.begin() as db:
            alert, call = locked(db, call_id)
            if call.state not in _RINGING or not reaches_silenced_worker(
                db, alert, call.to_kind, call.to_phone
            ):
                continue
            dialling, sid = call.state == CallState.DIALLING.value, call.operator_sid
            _end(call, CallState.CANCELLED)
            rung = call.to_name if dialling else call.placed_by
            tell(db, alert, call, "cancelled", f"stopped while {rung}'s phone rang. {UNDER_DURESS}")
        stopped.append(call_id)
        if sid is None:
            continue  # not yet taken by Twilio: its answer finds the call over (answered)
        # Dialling: the operator is on the line and hears why; before that, hung up.
        why = _hang_up(
            providers, sid, call_twiml.say_and_hang_up(DURESS_SAID) if dialling else None
        )
        if why is not None:
            with store.begin() as db:
                alert, call = locked(db, call_id)
                tell(db, alert, call, "failed", f"Twilio did not end the call: {why}")
    return stopped


# How often a call is asked to end while Twilio does not answer, and the pause before each
# try again: a phone ringing beside someone under duress is worth seconds of trying.
END_TRIES = 3
END_PAUSE_S = 1.0


def _hang_up(providers: Providers, sid: str, twiml: str | None) -> str | None:
    """End the call through Twilio, trying again while it does not answer; why it could not,
    or None once ended."""
    for attempt in range(END_TRIES):
        if attempt:
            time.sleep(END_PAUSE_S * attempt)
        try:
            providers.end_call(sid, twiml)
            return None
        except Retry as exc:
            why = str(exc)
        except Failed as exc:
            # After a try with no answer, a refusal is most likely that try's work: the call
            # had ended already.
            return None if attempt else str(exc)
    return why


def operator_status(db: Session, alert: Alert, call: Call, status: str, duration: str) -> None:
    """News of the operator's leg (the call Vigil placed). Only its end matters: answering
    is told by Twilio asking for the TwiML (`answered`)."""
    final = status in _UNANSWERED or status == "completed"
    if not final or call.state in CALL_OVER:
        return
    if call.state == CallState.CALLING_OPERATOR.value:
        state, word, text = _UNANSWERED.get(
            status, (CallState.CANCELLED, "cancelled", "{who} hung up")
        )
        _end(call, state)
        tell(db, alert, call, word, text.format(who=call.placed_by))
    elif call.state == CallState.DIALLING.value:
        _end(call, CallState.CANCELLED)
        tell(
            db, alert, call, "cancelled", f"{call.placed_by} hung up before {call.to_name} answered"
        )
    else:  # connected: the operator hung up first, and the <Dial>'s action did not say
        _end(call, CallState.ENDED)
        tell(db, alert, call, "ended", f"ended after {span(call.duration_s or 0)}")


def other_status(db: Session, alert: Alert, call: Call, status: str, duration: str) -> None:
    """News of the other person's leg (the call the <Dial> placed)."""
    if call.state in CALL_OVER:
        return
    if status in ("in-progress", "answered") and call.state == CallState.DIALLING.value:
        call.state, call.connected_at = CallState.CONNECTED.value, utcnow()
        tell(db, alert, call, "connected", f"{call.to_name} answered: connected")
    elif status == "completed" and call.state == CallState.CONNECTED.value:
        _end(call, CallState.ENDED, int(duration) if duration.isdigit() else None)
        tell(db, alert, call, "ended", f"ended after {span(call.duration_s or 0)}")
    elif status in _UNANSWERED:
        state, word, text = _UNANSWERED[status]
        _end(call, state)
        tell(db, alert, call, word, text.format(who=call.to_name))


def dialled(db: Session, alert: Alert, call: Call, dial_status: str, duration: str) -> str:
    """The <Dial> is over (Twilio's action): the call's end if its legs' news has not told
    it yet, and the words the operator hears before Twilio hangs up."""
    if dial_status == "completed":
        other_status(db, alert, call, "completed", duration)
        return call_twiml.say_and_hang_up("The call has ended. Goodbye.")
    if dial_status in _UNANSWERED:
        other_status(db, alert, call, dial_status, duration)
        return call_twiml.say_and_hang_up(
            _UNANSWERED[dial_status][2].format(who=call.to_name).capitalize() + ". Goodbye."
        )
    return call_twiml.say_and_hang_up("Goodbye.")


def keep_recording(
    store: Store,
    evidence: EvidenceStore,
    settings: Settings,
    *,
    call_id: int,
    recording_sid: str,
    call_sid: str,
    status: str,
    duration_s: str,
) -> None:
    """Twilio's news of the call's recording: a completed one is fetched, kept as the
    alert's evidence with its sha256 (evidence.keep_for_alert), and the timeline says so.
    Raises LookupError for an unknown call, FetchFailed when Twilio did not give it (the
    timeline says so too: Twilio does not send the news again)."""
    with store.session() as db:
        call = db.get(Call, call_id)
        if call is None or call_sid not in (call.operator_sid, call.other_sid):
            raise LookupError(f"no call {call_id} with the leg {call_sid}")
    if status != "completed":
        with store.begin() as db:
            alert, call = locked(db, call_id)
            tell(db, alert, call, "failed", f"the recording {recording_sid} is {status}")
        return
    try:
        data, codec, seconds = fetch(settings, recording_sid, call_sid)
    except FetchFailed as why:
        with store.begin() as db:
            alert, call = locked(db, call_id)
            tell(db, alert, call, "failed", f"the recording {recording_sid} not fetched: {why}")
        raise
    if seconds is None and duration_s.isdigit():
        seconds = int(duration_s)
    kept = keep_for_alert(
        store,
        evidence,
        alert_id=call.alert_id,
        evidence_id=f"call-{recording_sid}",
        data=data,
        codec=codec,
        duration_ms=seconds * 1000 if seconds is not None else None,
        source={"twilio_recording": recording_sid, "call": call_sid, "placed_by": call.placed_by},
        actor=f"user:{call.placed_by}",  # who made the call, not the worker's device
    )
    with store.begin() as db:
        alert, call = locked(db, call_id)
        call.recording_sid, call.evidence_id = recording_sid, kept.evidence_id
        length = f"{span(seconds)}, " if seconds is not None else ""
        tell(
            db,
            alert,
            call,
            "recorded",
            f"recording kept as evidence {kept.evidence_id} ({length}sha256 {kept.sha256})",
        )
