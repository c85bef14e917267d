"""Error translation from gRPC status (code + ErrorInfo details) to typed SDK errors."""

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from qpi.sdk import errors


class FakeRpcError(grpc.RpcError, grpc.Call):
    """A failed call as grpc raises it, with optional rich status in trailing metadata."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        self._code, self._message = code, message
        self._trailers: tuple[tuple[str, Any], ...] = ()
        if reason:
            info = error_details_pb2.ErrorInfo(
                reason=reason, domain="qpi.v1", metadata=metadata or {}
            )
            detail = any_pb2.Any()
            detail.Pack(info)
            status = status_pb2.Status(
                code=code.value[0] if status_code is None else status_code,
                message=message,
                details=[detail],
            )
            self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailers

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_QASM", errors.InvalidQasmError),
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", errors.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", errors.JobNotFoundError),
        (grpc.StatusCode.NOT_FOUND, "QPU_NOT_FOUND", errors.QpuNotFoundError),
        (grpc.StatusCode.NOT_FOUND, "TIME_SLOT_NOT_FOUND", errors.NotFoundError),
        (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", errors.AuthenticationError),
        (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS", errors.AuthenticationError),
        (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY", errors.PermissionDeniedError),
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "INSUFFICIENT_QPU_SECONDS",
            errors.InsufficientQpuSecondsError,
        ),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE", errors.PayloadTooLargeError),
        (grpc.StatusCode.FAILED_PRECONDITION, "QPU_DISABLED", errors.FailedPreconditionError),
        (grpc.StatusCode.ALREADY_EXISTS, "QPU_NAME_TAKEN", errors.AlreadyExistsError),
        (grpc.StatusCode.ABORTED, "CONCURRENT_UPDATE", errors.ConflictError),
        (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", errors.UnavailableError),
        (grpc.StatusCode.INTERNAL, "INTERNAL", errors.InternalError),
    ],
)
def test_reason_selects_error_class(
    code: grpc.StatusCode, reason: str, expected: type[errors.QPIError]
) -> None:
    err = errors.from_rpc_error(FakeRpcError(code, "it went wrong", reason, {"id": "abc"}))
    assert type(err) is expected
    assert err.code is code
    assert err.reason == reason
    assert err.message == "it went wrong"
    assert err.metadata == {"id": "abc"}
    assert reason in str(err)


def test_code_alone_selects_class_when_no_details() -> None:
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "no token"))
    assert type(err) is errors.AuthenticationError
    assert err.reason == ""
    assert err.metadata == {}


def test_unknown_code_gives_base_error() -> None:
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, "?"))
    assert type(err) is errors.QPIError


def test_deadline_exceeded_is_a_timeout_error() -> None:
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"))
    assert isinstance(err, TimeoutError)


def test_inconsistent_status_details_are_ignored() -> None:
    """A rich status whose code disagrees with the call is not trusted."""
    fake = FakeRpcError(grpc.StatusCode.NOT_FOUND, "x", "QPU_NOT_FOUND", status_code=code_pb2.OK)
    err = errors.from_rpc_error(fake)
    assert type(err) is errors.NotFoundError
    assert err.reason == ""


def test_invalid_argument_errors_are_value_errors() -> None:
    err = errors.from_rpc_error(
        FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", "INVALID_QASM")
    )
    assert isinstance(err, ValueError)
