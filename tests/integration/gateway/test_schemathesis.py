"""Property-based API testing from our own OpenAPI document, with authenticated requests.

Every response must match what the document declares: its status code, content type,
headers and body schema (the error envelope included), and never be a 5xx. Where the
schema can say everything a server accepts, valid input must also be accepted (no 400).

Schemathesis' pytest plugin does not run under pytest 9 here, so its Python API drives
Hypothesis directly. The operations are split into shards, each against its own server,
so pytest-xdist can spread them; examples per operation are bounded for CI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 15
SHARDS = 4

ALWAYS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]

# Operations whose acceptance depends on more than the schema can say: QASM that must
# parse, filter expressions, relation names for expand, bookings that must not overlap or
# lie in the past, expiries that must be in the future, and collection bodies whose rules
# the server checks. They get every check but positive_data_acceptance.
SEMANTIC = {
    ("POST", "/api/jobs"),
    ("POST", "/api/jobs/batch"),
    ("POST", "/api/tokens"),
    ("POST", "/api/op/drivers/create"),
}
SEMANTIC_PREFIXES = ("/api/collections/",)

SKIPPED = {"/api/realtime/events"}  # an endless stream by design; covered by its own test


def checks_for(method: str, path: str) -> list[Callable[..., Any]]:
    """The checks for one operation (see SEMANTIC)."""
    semantic = (method, path) in SEMANTIC or (
        path.startswith(SEMANTIC_PREFIXES) and not path.endswith("/auth-methods")
    )
    return ALWAYS if semantic else [*ALWAYS, positive_data_acceptance]


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("shard", range(SHARDS))
def test_responses_conform_to_the_schema(qpi_server: object, shard: int) -> None:
    base = qpi_server.http_url
    qpi_server.create_qpu("fuzz_qpu", 4)
    headers = {"Authorization": f"Bearer {qpi_server.admin_token}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path not in SKIPPED
    ]
    operations.sort(key=lambda op: (op.path, op.method))
    mine = operations[shard::SHARDS]
    failures: list[str] = []
    calls = 0

    def fuzz(operation: Any) -> None:
        checks = checks_for(operation.method.upper(), operation.path)

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            response = case.call(base_url=base, headers=headers, timeout=30, allow_redirects=False)
            calls += 1
            try:
                case.validate_response(
                    response,
                    checks=checks,
                    headers=headers,
                    transport_kwargs={"base_url": base, "headers": headers, "timeout": 30},
                )
            except (Exception, BaseExceptionGroup) as exc:  # collected: one report in the end
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:1500]}")

        run()

    for operation in mine:
        fuzz(operation)

    assert len(operations) >= 40
    assert calls >= len(mine) * 3
    assert not failures, "\n\n".join(failures[:15])
