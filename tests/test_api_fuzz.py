"""Schemathesis against the OpenAPI spec: whatever is sent, the API answers below 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from monitor.users.models import Role
from tests.support import FUZZ_SCALE, Running


def test_no_request_gets_a_server_error(svc: Running) -> None:
    admin = svc.user("fuzz-admin", Role.ADMIN)  # every route is open to an admin
    schema = schemathesis.openapi.from_asgi("/openapi.json", svc.service.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @settings(
            max_examples=30 * FUZZ_SCALE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            # A minute, not schemathesis's 10 s: a loaded two-core run once stalled past
            # 10 s on a request refused at its first check (its retry took milliseconds).
            response = case.call(headers=admin, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} query={case.query} "
                    f"body={case.body!r:.200} -> {response.status_code} {response.text[:200]}"
                )

        call()
    assert failures == []
