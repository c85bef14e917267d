"""The only place domain errors become gRPC statuses (google.rpc.Status + ErrorInfo)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from qpi.server.domain.errors import InvalidArgumentError, QpiError, UnavailableError
from qpi.server.services.events import CLIENT_STREAM_BACKLOG, SubscriberTooSlowError

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "qpi.v1"

_CODES: dict[str, int] = {
    "INVALID_ARGUMENT": code_pb2.INVALID_ARGUMENT,
    "UNAUTHENTICATED": code_pb2.UNAUTHENTICATED,
    "PERMISSION_DENIED": code_pb2.PERMISSION_DENIED,
    "NOT_FOUND": code_pb2.NOT_FOUND,
    "ALREADY_EXISTS": code_pb2.ALREADY_EXISTS,
    "FAILED_PRECONDITION": code_pb2.FAILED_PRECONDITION,
    "RESOURCE_EXHAUSTED": code_pb2.RESOURCE_EXHAUSTED,
    "ABORTED": code_pb2.ABORTED,
    "UNAVAILABLE": code_pb2.UNAVAILABLE,
    "UNIMPLEMENTED": code_pb2.UNIMPLEMENTED,
    "INTERNAL": code_pb2.INTERNAL,
}


def _clip(text: str, limit: int = 200) -> str:
    # Statuses travel in HTTP/2 trailers (16 KiB limit): never echo huge user input.
    return text if len(text) <= limit else text[: limit - 1] + "…"


# gRPC's own retry machinery (a client's retryPolicy) waits this long before its next
# attempt when the server sends it, so the hint works without any client code.
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class RichStatus(_Status, grpc.Status):
    """A status with its trailing metadata (grpc.Status is an abstract interface)."""


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: QpiError) -> grpc.Status:
    """Packs a domain error as a rich status: ErrorInfo always, BadRequest for fields,
    RetryInfo (plus gRPC's retry pushback) for errors that say when to retry."""
    details = []
    metadata = {key: _clip(value) for key, value in error.metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    details.append(_pack(info))
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(error.retry_after, 0.0) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if error.field:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_clip(error.field), description=_clip(error.message, 1000)
                )
            ]
        )
        details.append(_pack(bad))
    status = status_pb2.Status(
        code=_CODES.get(error.code, code_pb2.INTERNAL),
        message=_clip(error.message, 1000),
        details=details,
    )
    converted = rpc_status.to_status(status)
    if not isinstance(error, UnavailableError) or error.retry_after is None:
        return converted  # type: ignore[no-any-return]
    # Outages only: that is what clients' retry policies retry (see qpi.sdk._transport).
    retry_ms = max(int(error.retry_after * 1000), 1)
    return RichStatus(
        converted.code,
        converted.details,
        (*converted.trailing_metadata, (RETRY_PUSHBACK_KEY, str(retry_ms))),
    )


def internal_status() -> grpc.Status:
    """The sanitised status for unexpected failures."""
    from qpi.server.domain.errors import InternalError

    return to_status(InternalError("INTERNAL", "Internal server error."))


def nul_field(message: Message, prefix: str = "") -> str:
    """Path of the first string field containing a NUL character, or "".

    PostgreSQL text columns cannot store NUL, and no QPI field has a use for it, so such
    requests are refused up front for every store alike.
    """
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        repeated = descriptor.is_repeated
        items = value if repeated else [value]
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if repeated else path
            if isinstance(item, str) and "\x00" in item:
                return where
            if isinstance(item, Message):
                found = nul_field(item, f"{where}.")
                if found:
                    return found
    return ""


def _reject_nul(request: object) -> None:
    # A NUL character is a zero byte once serialised: a request without one (most of
    # them) needs no walk through its fields in Python.
    if isinstance(request, Message) and b"\x00" in request.SerializeToString():
        field = nul_field(request)
        if field:
            raise InvalidArgumentError(
                "INVALID_FIELD", f"Field {field} must not contain NUL characters.", field=field
            )


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def unary(
    method: Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
    """Wraps a unary handler with the error translator."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        try:
            _reject_nul(request)
            return await method(self, request, context)
        except QpiError as exc:
            logger.info("[%s][%s] %s", method.__name__, exc.reason, exc.message)
            await context.abort_with_status(to_status(exc))
            raise
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("[%s] unexpected failure", method.__name__)
            await context.abort_with_status(internal_status())
            raise

    return wrapper


def streaming(
    method: Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]]:
    """Wraps a server-streaming handler with the error translator."""

    @functools.wraps(method)
    async def wrapper(
        self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> AsyncIterator[Resp]:
        try:
            _reject_nul(request)
            async for item in method(self, request, context):
                yield item
        except SubscriberTooSlowError:
            exc = UnavailableError(
                "STREAM_BEHIND",
                f"The stream fell {CLIENT_STREAM_BACKLOG} events behind its reader and was "
                "closed; reconnect and re-read the current state.",
            )
            logger.warning("[%s][%s] %s", method.__name__, exc.reason, exc.message)
            await context.abort_with_status(to_status(exc))
        except QpiError as exc:
            logger.info("[%s][%s] %s", method.__name__, exc.reason, exc.message)
            await context.abort_with_status(to_status(exc))
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("[%s] unexpected failure", method.__name__)
            await context.abort_with_status(internal_status())

    return wrapper
