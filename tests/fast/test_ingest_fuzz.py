"""Random payloads thrown at the running ingest: each is refused and changes no state, and a
valid alert after them still arrives."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.evidence.models import Evidence
from monitor.ingest.models import RefusedMessage
from monitor.protocol import Refusal, parse
from monitor.visits.models import Visit
from tests.fast.handlers import Handlers as Running
from tests.support import FUZZ_SCALE, wait_until

SUFFIXES = ["location", "heartbeat", "alert", "alert/cancel", "visit", "evidence"]

junk = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(
            [
                "v",
                "ts",
                "id",
                "type",
                "loc",
                "batt",
                "pin",
                "action",
                "duration_s",
                "alert_id",
                "sha256",
                "kind",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=20)
        | st.floats(allow_nan=False),
        max_size=8,
    ).map(lambda d: json.dumps(d).encode()),
)


def _state(svc: Running, device_id: str) -> tuple[int, int, int, int]:
    with svc.store.session() as db:

        def n(model, col) -> int:  # type: ignore[no-untyped-def]
            return db.scalar(select(func.count()).select_from(model).where(col == device_id)) or 0

        return (
            n(Alert, Alert.device_id),
            n(Visit, Visit.device_id),
            n(Evidence, Evidence.device_id),
            n(RefusedMessage, RefusedMessage.device_id),
        )


def test_random_payloads_change_nothing(svc: Running) -> None:
    badge, b = svc.badge("badge-fuzz")
    sent = 0

    @settings(
        max_examples=60 * FUZZ_SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(suffix=st.sampled_from(SUFFIXES), payload=junk)
    def throw(suffix: str, payload: bytes) -> None:
        nonlocal sent
        topic = f"vigil/v1/{b.device_id}/{suffix}"
        if not isinstance(parse(topic, payload), Refusal):
            return  # by chance valid: not what this test is about
        before = _state(svc, b.device_id)
        badge.publish_raw(suffix, payload, qos=1)
        sent += 1
        wait_until(
            lambda: _state(svc, b.device_id)[3] == before[3] + 1,
            timeout=10,
            what="the refusal to be recorded",
        )
        assert _state(svc, b.device_id)[:3] == before[:3]

    throw()
    assert sent > 20
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    assert _state(svc, b.device_id)[0] == 1
