"""gRPC error → REST envelope mapping (style-anchors §9.3)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from qpi.gateway import errors


def trailers(reason: str = "", violations: tuple[tuple[str, str], ...] = ()) -> tuple:
    status = status_pb2.Status(code=3, message="m")
    if reason:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="qpi.v1"))
        status.details.append(detail)
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    return ((errors.STATUS_DETAILS_KEY, status.SerializeToString()),)


@pytest.mark.parametrize(
    ("code", "reason", "http"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_QASM", 400),
        (grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_OVERLAP", 400),
        (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", 401),
        (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY", 403),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "INSUFFICIENT_QPU_SECONDS", 403),
        (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_QPU_SECONDS", 403),
        (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", 404),
        (grpc.StatusCode.ALREADY_EXISTS, "QPU_NAME_TAKEN", 409),
        (grpc.StatusCode.ABORTED, "CONCURRENT_UPDATE", 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE", 413),
        (grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE", 413),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", 429),
        (grpc.StatusCode.UNIMPLEMENTED, "EXECUTOR_UNAVAILABLE", 501),
        (grpc.StatusCode.UNAVAILABLE, "", 503),
        (grpc.StatusCode.INTERNAL, "INTERNAL", 500),
        (grpc.StatusCode.UNKNOWN, "", 500),
        (grpc.StatusCode.DATA_LOSS, "", 500),
    ],
)
def test_status_mapping(code: grpc.StatusCode, reason: str, http: int) -> None:
    failure = errors.parse_rpc_error(code, "boom", trailers(reason))
    assert failure.reason == reason
    assert errors.http_status_for(failure) == http


def test_reason_prefix_is_stripped() -> None:
    failure = errors.parse_rpc_error(
        grpc.StatusCode.NOT_FOUND, "x", trailers("ERROR_REASON_JOB_NOT_FOUND")
    )
    assert failure.reason == "JOB_NOT_FOUND"


def test_insufficient_seconds_uses_spec_message() -> None:
    failure = errors.parse_rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "balance is 0", trailers("INSUFFICIENT_QPU_SECONDS")
    )
    api = errors.api_error_from_failure(failure)
    assert api.envelope() == {
        "data": {},
        "message": "Insufficient QPU seconds balance.",
        "status": 403,
    }


def test_field_violations_become_envelope_data() -> None:
    failure = errors.parse_rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid shots",
        trailers("INVALID_FIELD", (("shots", "must be positive"),)),
    )
    body = errors.api_error_from_failure(failure).envelope()
    assert body["status"] == 400
    assert body["message"] == "Invalid shots."
    assert body["data"]["shots"]["message"] == "Must be positive."


def test_internal_messages_are_not_leaked() -> None:
    failure = errors.parse_rpc_error(grpc.StatusCode.INTERNAL, "sqlite locked at x.py:1", ())
    assert errors.api_error_from_failure(failure).message == "Internal server error."


def test_garbage_details_are_ignored() -> None:
    failure = errors.parse_rpc_error(
        grpc.StatusCode.NOT_FOUND, "gone", ((errors.STATUS_DETAILS_KEY, b"\xff\x00garbage"),)
    )
    assert errors.http_status_for(failure) == 404


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("job not found", "Job not found."), ("Done.", "Done."), ("ok?", "Ok?"), ("", "")],
)
def test_sentence(raw: str, expected: str) -> None:
    assert errors.sentence(raw) == expected


def test_outage_becomes_503_with_the_servers_retry_after() -> None:
    from google.protobuf import duration_pb2

    status = status_pb2.Status(code=14, message="The database is temporarily unavailable.")
    for message in (
        error_details_pb2.ErrorInfo(reason="DATABASE_UNAVAILABLE", domain="qpi.v1"),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=1_000_000)),
    ):
        detail = any_pb2.Any()
        detail.Pack(message)
        status.details.append(detail)
    failure = errors.parse_rpc_error(
        grpc.StatusCode.UNAVAILABLE,
        status.message,
        ((errors.STATUS_DETAILS_KEY, status.SerializeToString()),),
    )
    error = errors.api_error_from_failure(failure)
    assert error.status == 503
    assert error.reason == "DATABASE_UNAVAILABLE"
    assert error.headers == {"Retry-After": "3"}  # rounded up, never early


def test_outage_without_a_hint_still_says_when_to_retry() -> None:
    failure = errors.parse_rpc_error(grpc.StatusCode.UNAVAILABLE, "down", ())
    assert errors.api_error_from_failure(failure).headers == {"Retry-After": "1"}
    not_outage = errors.parse_rpc_error(grpc.StatusCode.NOT_FOUND, "nope", ())
    assert errors.api_error_from_failure(not_outage).headers == {}
