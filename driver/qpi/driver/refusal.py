"""Why the server ended or refused a driver stream, read from its rich gRPC status.

The server attaches a `google.rpc.ErrorInfo` (domain "qpi.v1") to every error and, when a
retry makes sense, a `google.rpc.RetryInfo`. The driver branches on the ErrorInfo reason,
never on the status code alone: PERMISSION_DENIED means "this token can never work" for a
wrong QPU but "not now" for a driver an administrator disabled.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "qpi.v1"

WAITING_REASONS = frozenset({"DRIVER_DISABLED", "QPU_DISABLED", "DRIVER_ALREADY_CONNECTED"})
"""Refusals that end by themselves (an administrator enables the driver, the other daemon
using this token goes away): the daemon stays up and retries."""

_FATAL_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})

_ADVICE = {
    "DRIVER_DISABLED": (
        "this driver is disabled by an administrator; the daemon stays up and re-attaches "
        "within seconds once the driver is enabled again"
    ),
    "QPU_DISABLED": (
        "this driver's QPU is disabled by an administrator; the daemon stays up and "
        "re-attaches within seconds once it is enabled again"
    ),
    "DRIVER_ALREADY_CONNECTED": (
        "another qpi-driver is already connected with this access token, so the server "
        "refused this one. Each daemon needs its own driver token (create one per machine "
        "in the dashboard). This daemon stands by and takes over if the other one goes away"
    ),
    "TOKEN_INVALID": (
        "the server does not know this access token (revoked, or copied wrongly); check "
        "--token / QPI_ACCESS_TOKEN against the token shown when the driver was registered"
    ),
    "UNAUTHENTICATED": "no usable access token was sent; set --token or QPI_ACCESS_TOKEN",
}


@dataclass(frozen=True)
class Refusal:
    """A classified stream error.

    Attributes:
        code: gRPC status code.
        reason: ErrorInfo reason ("" if the server sent none).
        details: The status message.
        retry_after: Seconds from the server's RetryInfo, if any.
    """

    code: grpc.StatusCode
    reason: str
    details: str
    retry_after: float | None = None

    @property
    def waits(self) -> bool:
        """The daemon should keep retrying (the refusal is temporary by nature)."""
        return self.reason in WAITING_REASONS

    @property
    def fatal(self) -> bool:
        """Retrying cannot help: the token is wrong or not allowed here."""
        return not self.waits and self.code in _FATAL_CODES

    def explain(self) -> str:
        """One sentence for the operator: what the server said and what to do."""
        said = f"{self.code.name}/{self.reason}" if self.reason else self.code.name
        advice = _ADVICE.get(self.reason)
        if advice is None and self.fatal:
            advice = "check the access token and the QPU it belongs to"
        text = f"the server refused this driver ({said}: {self.details})"
        return f"{text}: {advice}" if advice else text


def refusal_of(error: grpc.aio.AioRpcError) -> Refusal:
    """Classifies a failed stream by the ErrorInfo and RetryInfo in its trailers."""
    reason = ""
    retry_after: float | None = None
    for key, value in error.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:  # a garbled detail must not hide the status code
            status.Clear()
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                reason = info.reason
            elif detail.Unpack(retry):
                retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return Refusal(error.code(), reason, error.details() or "", retry_after)
