"""Typed exceptions rebuilt from gRPC status codes and ``google.rpc.ErrorInfo`` reasons.

Every SDK call translates :class:`grpc.RpcError` into one of these classes, so callers can
write ``except JobNotFoundError`` instead of inspecting status codes. The class is chosen
by the ``ErrorInfo.reason`` first (the server's stable catalogue, see ``ErrorReason`` in
``qpi/v1/error_reason.proto``) and by the status code when no reason is known.

Example:
    >>> from qpi.sdk import QPIClient, JobNotFoundError
    >>> with QPIClient("grpc://127.0.0.1:50051", api_token="qpi_...") as client:
    ...     try:
    ...         client.get_job("doesnotexist123")
    ...     except JobNotFoundError as err:
    ...         print(err.reason)  # JOB_NOT_FOUND
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc  # type: ignore[import-untyped, unused-ignore]
from google.rpc import error_details_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from qpi.sdk.models import Job


class QPIError(Exception):
    """Base class of every error raised by the QPI SDK.

    Attributes:
        code: The gRPC status code, or ``None`` for errors raised by the SDK itself.
        reason: The ``ErrorInfo.reason`` (e.g. ``"INVALID_QASM"``), or ``""`` if absent.
        message: The human-readable message sent by the server.
        metadata: The ``ErrorInfo.metadata`` key/value pairs (e.g. the offending id).
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        label = self.reason or (self.code.name if self.code is not None else "")
        return f"{self.message} [{label}]" if label else self.message


class AuthenticationError(QPIError):
    """Credentials are missing, malformed, unknown, revoked or expired."""


class PermissionDeniedError(QPIError):
    """The caller is authenticated but not allowed to do this (e.g. admin only)."""


class NotFoundError(QPIError):
    """The addressed resource does not exist or is not visible to the caller."""


class JobNotFoundError(NotFoundError):
    """The job does not exist or belongs to another user."""


class QpuNotFoundError(NotFoundError):
    """No QPU has this id or name."""


class AlreadyExistsError(QPIError):
    """A resource with this unique name or e-mail already exists."""


class InvalidArgumentError(QPIError, ValueError):
    """A request field is malformed or out of range."""


class InvalidQasmError(InvalidArgumentError):
    """A circuit is not valid OpenQASM 2 or 3."""


class FailedPreconditionError(QPIError):
    """The system is not in a state that allows the operation (e.g. QPU disabled)."""


class ConflictError(QPIError):
    """The operation lost a race with a concurrent update; retrying may succeed."""


class ResourceExhaustedError(QPIError):
    """A quota or size limit was hit."""


class InsufficientQpuSecondsError(ResourceExhaustedError):
    """The caller's QPU-seconds balance is exhausted."""


class PayloadTooLargeError(ResourceExhaustedError):
    """The request or one of its circuits exceeds the server's size limit."""


class UnavailableError(QPIError):
    """The server is unreachable, shutting down, or a dependency is down."""


class DeadlineExceededError(QPIError, TimeoutError):
    """The call did not complete within its timeout."""


class InternalError(QPIError):
    """The server failed unexpectedly; details are in its log."""


class JobFailedError(QPIError, RuntimeError):
    """A job ended in the ``failed`` state (``wait`` raises it only when asked to).

    Attributes:
        job: The failed job, with its ``error`` text.
    """

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} failed: {job.error}", reason="JOB_FAILED")
        self.job = job


class JobCancelledError(QPIError, RuntimeError):
    """A job whose result was requested was cancelled.

    Attributes:
        job: The cancelled job.
    """

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} was cancelled", reason="JOB_CANCELLED")
        self.job = job


_BY_REASON: dict[str, type[QPIError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "TOKEN_INVALID": AuthenticationError,
    "TOKEN_EXPIRED": AuthenticationError,
    "INVALID_CREDENTIALS": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "ADMIN_ONLY": PermissionDeniedError,
    "NOT_OWNER": PermissionDeniedError,
    "SIGNUP_DISABLED": PermissionDeniedError,
    "JOB_NOT_FOUND": JobNotFoundError,
    "QPU_NOT_FOUND": QpuNotFoundError,
    "INVALID_QASM": InvalidQasmError,
    "INVALID_FIELD": InvalidArgumentError,
    "INVALID_PAGE_TOKEN": InvalidArgumentError,
    "INSUFFICIENT_QPU_SECONDS": InsufficientQpuSecondsError,
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "CONCURRENT_UPDATE": ConflictError,
}

_BY_CODE: dict[grpc.StatusCode, type[QPIError]] = {
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def _error_info(err: Any) -> tuple[str, dict[str, str]]:
    """Returns ``(reason, metadata)`` from the first ErrorInfo detail, or empty values."""
    try:
        status = rpc_status.from_call(err)
    except (ValueError, AttributeError, TypeError):
        # A status whose code/message disagree with the call, or a call object without
        # trailing metadata: there is nothing trustworthy to decode.
        return "", {}
    if status is None:
        return "", {}
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            return info.reason, dict(info.metadata)
    return "", {}


def retry_delay_of(err: Any) -> float | None:
    """The server's ``google.rpc.RetryInfo`` delay in seconds, if the error carries one."""
    try:
        status = rpc_status.from_call(err)
    except (ValueError, AttributeError, TypeError):
        return None
    for detail in status.details if status is not None else ():
        retry = error_details_pb2.RetryInfo()
        if detail.Is(retry.DESCRIPTOR) and detail.Unpack(retry):
            return float(retry.retry_delay.ToTimedelta().total_seconds())
    return None


def from_rpc_error(err: grpc.RpcError) -> QPIError:
    """Converts a gRPC error into the matching :class:`QPIError` subclass.

    Args:
        err: The error raised by a gRPC call (it is also a ``grpc.Call``).

    Returns:
        The typed error; the caller raises it ``from err``.

    Example:
        >>> try:
        ...     stub.GetJob(request)
        ... except grpc.RpcError as rpc_err:
        ...     raise from_rpc_error(rpc_err) from rpc_err
    """
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    reason, metadata = _error_info(err)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, QPIError)
    return cls(details or "", code=code, reason=reason, metadata=metadata)
