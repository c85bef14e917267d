"""REST error envelope and the gRPC → HTTP error mapping (style-anchors §9.3, mirrored).

Every error the gateway returns has the PocketBase shape
``{"data": {<field>: {"code", "message"}}, "message": "<Sentence.>", "status": <code>}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]
from google.rpc import error_details_pb2, status_pb2

logger = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"

# gRPC code → HTTP status, for codes whose status does not depend on the reason.
_CODE_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# Reasons whose HTTP status is fixed by the spec regardless of the gRPC code.
_REASON_TO_HTTP: dict[str, int] = {
    "INSUFFICIENT_QPU_SECONDS": 403,
    "PAYLOAD_TOO_LARGE": 413,
    # A weekly booking allowance is a rule of the calendar, not a reason to retry soon.
    "BOOKING_QUOTA_EXCEEDED": 400,
}

# Messages the spec prescribes for some reasons (the server's own text is used otherwise).
_REASON_MESSAGES: dict[str, str] = {
    "INSUFFICIENT_QPU_SECONDS": "Insufficient QPU seconds balance.",
}

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Something went wrong while processing your request.",
    401: "Authentication required.",
    403: "You are not allowed to perform this request.",
    404: "The requested resource wasn't found.",
    405: "Method not allowed.",
    409: "The resource was changed concurrently or already exists.",
    413: "Request entity too large.",
    429: "Too many requests.",
    500: "Internal server error.",
    501: "Not implemented.",
    503: "Service unavailable.",
    504: "The server did not answer in time.",
}


def sentence(text: str) -> str:
    """Return ``text`` as PocketBase renders messages: capitalised, ending with a period.

    Args:
        text: Raw message.

    Returns:
        The message with its first letter upper-cased and a final period.
    """
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text


def default_message(status: int) -> str:
    """Return the generic message used for an HTTP status without a specific one."""
    return _DEFAULT_MESSAGES.get(status, "Something went wrong while processing your request.")


@dataclass
class ApiError(Exception):
    """An error that becomes one REST error envelope."""

    status: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    """The ErrorInfo reason of the RPC error this came from, if any."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``Retry-After``."""

    def envelope(self) -> dict[str, Any]:
        """Return the JSON body for this error."""
        return envelope(self.status, self.message, self.data)


def envelope(status: int, message: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the PocketBase error envelope.

    Args:
        status: HTTP status code.
        message: Human-readable message; normalised with :func:`sentence`.
        data: Per-field errors, ``{field: {"code": ..., "message": ...}}``.

    Returns:
        The envelope dict.
    """
    return {
        "data": dict(data or {}),
        "message": sentence(message) or default_message(status),
        "status": status,
    }


def field_error(code: str, message: str) -> dict[str, str]:
    """Return one entry of the envelope's ``data`` map."""
    return {"code": code, "message": sentence(message)}


@dataclass(frozen=True)
class RpcFailure:
    """What the gateway learnt from a failed RPC."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    field_violations: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None
    """Seconds from a RetryInfo detail, when the server said when to retry."""


def parse_rpc_error(code: grpc.StatusCode, details: str, trailers: Any) -> RpcFailure:
    """Extract the code, message, ErrorInfo reason and BadRequest violations of an RPC error.

    Args:
        code: The call's status code.
        details: The call's status message.
        trailers: Trailing metadata (sequence of ``(key, value)`` pairs) or None.

    Returns:
        A :class:`RpcFailure`; missing or undecodable details are simply absent.
    """
    reason = ""
    retry_after: float | None = None
    violations: list[tuple[str, str]] = []
    for key, value in trailers or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # noqa: BLE001 - a broken detail must not hide the real error
            logger.debug("undecodable %s trailer", STATUS_DETAILS_KEY)
            continue
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason.removeprefix("ERROR_REASON_")
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend((v.field, v.description) for v in bad.field_violations)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return RpcFailure(code, details or "", reason, tuple(violations), retry_after)


def http_status_for(failure: RpcFailure) -> int:
    """Map a failed RPC to an HTTP status (reason first, then code, else 500)."""
    if failure.reason in _REASON_TO_HTTP:
        return _REASON_TO_HTTP[failure.reason]
    return _CODE_TO_HTTP.get(failure.code, 500)


def api_error_from_failure(failure: RpcFailure) -> ApiError:
    """Convert a failed RPC into the REST error it stands for.

    Args:
        failure: The parsed RPC error.

    Returns:
        The :class:`ApiError` to raise.
    """
    status = http_status_for(failure)
    if status >= 500 and status not in (501, 503, 504):
        # Internal details stay in the log, never in the response.
        logger.warning("rpc failed code=%s message=%s", failure.code.name, failure.message)
        message = default_message(500)
    elif failure.reason in _REASON_MESSAGES:
        message = _REASON_MESSAGES[failure.reason]
    else:
        message = failure.message or default_message(status)
    data = {
        name or "body": field_error("validation_invalid_value", text)
        for name, text in failure.field_violations
    }
    headers = {}
    if failure.retry_after is not None:
        # Whole seconds, rounded up, so a client waiting this long is never early.
        headers["Retry-After"] = str(max(1, math.ceil(failure.retry_after)))
    return ApiError(status, message, data, failure.reason, headers)


def api_error_from_rpc(error: grpc.aio.AioRpcError) -> ApiError:
    """Convert a ``grpc.aio`` call error into an :class:`ApiError`."""
    failure = parse_rpc_error(error.code(), error.details() or "", error.trailing_metadata())
    return api_error_from_failure(failure)
