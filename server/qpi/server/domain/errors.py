"""The QPI error catalogue.

Every error the server returns is a :class:`QpiError` carrying a machine-readable
``reason`` (the name of a ``qpi.v1.ErrorReason`` value without its ``ERROR_REASON_``
prefix), a human sentence, string metadata with every dynamic value of that sentence,
and, for request-field problems, the offending field path. The subclass is the error
*family*; the transport layer maps it to a gRPC status code (``code`` holds that code's
name) and to an HTTP status, so this module never imports grpc.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar


class QpiError(Exception):
    """Base class of every domain error.

    Attributes:
        reason: UPPER_SNAKE reason from the catalogue, e.g. ``"JOB_NOT_FOUND"``.
        message: A precise sentence ending with a period.
        metadata: Every dynamic value mentioned in ``message``, as strings.
        field: Path of the offending request field (e.g. ``"circuits[1].shots"``), if any.
        retry_after: Seconds after which retrying may succeed, for throttling errors.
    """

    code: ClassVar[str] = "UNKNOWN"
    """Name of the gRPC status code of this family."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        metadata: Mapping[str, object] | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Create an error.

        Args:
            reason: A reason listed in :data:`CATALOGUE`.
            message: The human-readable sentence.
            metadata: Dynamic values of the message; values are converted with ``str``.
            field: Offending request field path, for field violations.
            retry_after: Seconds until a retry may succeed (becomes a RetryInfo detail).

        Raises:
            ValueError: If ``reason`` is not in the catalogue (a programming error).
        """
        if reason not in CATALOGUE:
            raise ValueError(f"unknown error reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}
        self.field = field
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (keyword-only arguments are not in ``args``).
        return (
            _rebuild,
            (type(self), self.reason, self.message, self.metadata, self.field, self.retry_after),
        )


def _rebuild(
    cls: type[QpiError],
    reason: str,
    message: str,
    metadata: dict[str, str],
    field: str | None,
    retry_after: float | None = None,
) -> QpiError:
    return cls(reason, message, metadata=metadata, field=field, retry_after=retry_after)


class InvalidArgumentError(QpiError):
    """The request itself is malformed or out of range."""

    code = "INVALID_ARGUMENT"


class UnauthenticatedError(QpiError):
    """No valid credentials were presented."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(QpiError):
    """The caller is known but not allowed to do this."""

    code = "PERMISSION_DENIED"


class NotFoundError(QpiError):
    """The addressed resource does not exist or is not visible to the caller."""

    code = "NOT_FOUND"


class AlreadyExistsError(QpiError):
    """A resource with the same unique key already exists."""

    code = "ALREADY_EXISTS"


class FailedPreconditionError(QpiError):
    """The system is not in a state that allows the operation."""

    code = "FAILED_PRECONDITION"


class ResourceExhaustedError(QpiError):
    """A quota, balance or size limit was exceeded."""

    code = "RESOURCE_EXHAUSTED"


class AbortedError(QpiError):
    """A concurrency conflict; the caller may retry."""

    code = "ABORTED"


class UnavailableError(QpiError):
    """The service or a dependency is temporarily unavailable; the caller should retry
    (after ``retry_after`` seconds when set)."""

    code = "UNAVAILABLE"


DATABASE_RETRY_AFTER = 2.0
"""Seconds clients are told to wait while the database is unreachable (a restart or a
failover takes a few seconds)."""


def database_unavailable() -> UnavailableError:
    """The error for any request that failed because the database could not be reached."""
    return UnavailableError(
        "DATABASE_UNAVAILABLE",
        "The database is temporarily unavailable; retry shortly.",
        retry_after=DATABASE_RETRY_AFTER,
    )


TRANSACTION_RETRY_AFTER = 0.1
"""Seconds clients are told to wait after their transaction lost a conflict (the other
transaction finishes within milliseconds)."""


def transaction_conflict() -> UnavailableError:
    """The error for a request whose transaction the database aborted to settle a
    conflict with a concurrent one: nothing was stored, and a retry normally succeeds."""
    return UnavailableError(
        "TRANSACTION_CONFLICT",
        "The database aborted this request's transaction because a concurrent one "
        "conflicted with it (nothing was stored); retry.",
        retry_after=TRANSACTION_RETRY_AFTER,
    )


class UnimplementedError(QpiError):
    """The operation is not implemented. No reason is specific to it; use ``INTERNAL``."""

    code = "UNIMPLEMENTED"


class InternalError(QpiError):
    """An unexpected server fault; details belong in the log, not the message."""

    code = "INTERNAL"


CATALOGUE: Mapping[str, type[QpiError]] = MappingProxyType(
    {
        "INVALID_FIELD": InvalidArgumentError,
        "INVALID_QASM": InvalidArgumentError,
        "INVALID_FILTER": InvalidArgumentError,
        "BATCH_TOO_LARGE": InvalidArgumentError,
        "PAYLOAD_TOO_LARGE": ResourceExhaustedError,
        "UNAUTHENTICATED": UnauthenticatedError,
        "TOKEN_INVALID": UnauthenticatedError,
        "TOKEN_EXPIRED": UnauthenticatedError,
        "INVALID_CREDENTIALS": UnauthenticatedError,
        "PERMISSION_DENIED": PermissionDeniedError,
        "ADMIN_ONLY": PermissionDeniedError,
        "JOB_NOT_FOUND": NotFoundError,
        "QPU_NOT_FOUND": NotFoundError,
        "QPU_DISABLED": FailedPreconditionError,
        "NO_ELIGIBLE_QPU": FailedPreconditionError,
        "QPU_NAME_TAKEN": AlreadyExistsError,
        "DRIVER_NOT_FOUND": NotFoundError,
        "DRIVER_DISABLED": FailedPreconditionError,
        "DRIVER_ALREADY_CONNECTED": FailedPreconditionError,
        "JOB_ALREADY_TERMINAL": FailedPreconditionError,
        "INSUFFICIENT_QPU_SECONDS": ResourceExhaustedError,
        "TIME_SLOT_NOT_FOUND": NotFoundError,
        "BOOKING_OVERLAP": FailedPreconditionError,
        "BOOKING_IN_PAST": InvalidArgumentError,
        "BOOKING_STARTED": FailedPreconditionError,
        "BOOKING_INVALID_RANGE": InvalidArgumentError,
        "TIME_REQUEST_NOT_FOUND": NotFoundError,
        "TIME_REQUEST_PROCESSED": FailedPreconditionError,
        "USER_NOT_FOUND": NotFoundError,
        "EMAIL_TAKEN": AlreadyExistsError,
        "TOKEN_NOT_FOUND": NotFoundError,
        "TOKEN_EXISTS": AlreadyExistsError,
        "NOTIFICATION_NOT_FOUND": NotFoundError,
        "TELEMETRY_EVENT_NOT_FOUND": NotFoundError,
        "TOO_MANY_LOGIN_ATTEMPTS": ResourceExhaustedError,
        "TOO_MANY_PENDING_JOBS": ResourceExhaustedError,
        "BOOKING_TOO_LONG": InvalidArgumentError,
        "BOOKING_TOO_FAR_AHEAD": InvalidArgumentError,
        "BOOKING_QUOTA_EXCEEDED": ResourceExhaustedError,
        "INVALID_PAGE_TOKEN": InvalidArgumentError,
        "CONCURRENT_UPDATE": AbortedError,
        "PROTOCOL_VIOLATION": FailedPreconditionError,
        "SIGNUP_DISABLED": PermissionDeniedError,
        "INTERNAL": InternalError,
        "UNAVAILABLE": UnavailableError,
        "STREAM_BEHIND": UnavailableError,
        "DATABASE_UNAVAILABLE": UnavailableError,
        "TRANSACTION_CONFLICT": UnavailableError,
        "OAUTH2_PROVIDER_NOT_FOUND": NotFoundError,
        "OAUTH2_STATE_INVALID": InvalidArgumentError,
        "OAUTH2_PROVIDER_ERROR": UnauthenticatedError,
        "OAUTH2_CODE_INVALID": UnauthenticatedError,
        "OAUTH2_EMAIL_UNVERIFIED": PermissionDeniedError,
        "MEAS_LEVEL_UNSUPPORTED": FailedPreconditionError,
        "QASM_INCLUDE_FORBIDDEN": InvalidArgumentError,
        "CIRCUIT_TOO_LARGE": InvalidArgumentError,
        "PARSE_BUDGET_EXCEEDED": InvalidArgumentError,
        "PARSER_BUSY": UnavailableError,
        "QPU_DELETED": NotFoundError,
    }
)
"""Every error reason mapped to the family (and so the status code) it is raised with."""


def error_for(
    reason: str,
    message: str,
    *,
    metadata: Mapping[str, object] | None = None,
    field: str | None = None,
) -> QpiError:
    """Build an error of the family the catalogue assigns to ``reason``.

    Args:
        reason: A reason listed in :data:`CATALOGUE`.
        message: The human-readable sentence.
        metadata: Dynamic values of the message.
        field: Offending request field path, if any.

    Returns:
        An instance of ``CATALOGUE[reason]``.

    Raises:
        ValueError: If ``reason`` is unknown.
    """
    family = CATALOGUE.get(reason)
    if family is None:
        raise ValueError(f"unknown error reason {reason!r}")
    return family(reason, message, metadata=metadata, field=field)


def invalid_field(field: str, message: str, /, **metadata: object) -> InvalidArgumentError:
    """Build an ``INVALID_FIELD`` error naming ``field``.

    Args:
        field: Offending request field path.
        message: The human-readable sentence.
        **metadata: Dynamic values of the message.

    Returns:
        The error (not raised).
    """
    return InvalidArgumentError("INVALID_FIELD", message, metadata=metadata, field=field)
