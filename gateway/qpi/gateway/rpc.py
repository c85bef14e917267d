"""The gateway's gRPC side: one ``grpc.aio`` channel, the service stubs and a call helper.

Inside `qpi serve` the server also hands the gateway its unary methods as in-process calls
(:class:`GatewayConfig.local_calls <qpi.gateway.config.GatewayConfig>`): the stubs then
answer those without the channel, and only streams use it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]

from qpi.gateway import errors
from qpi.v1 import (
    account_service_pb2_grpc,
    admin_service_pb2_grpc,
    booking_service_pb2_grpc,
    event_service_pb2_grpc,
    job_service_pb2_grpc,
    nng_service_pb2_grpc,
    notification_service_pb2_grpc,
    qpu_service_pb2_grpc,
)

logger = logging.getLogger(__name__)

# Messages up to the gateway's body limit must pass through; results can be bigger than the
# 4 MiB gRPC default, and the server enforces its own limits with clear errors.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
)

Metadata = tuple[tuple[str, str], ...]

LocalCall = Callable[[Any, Sequence[tuple[str, str]]], Awaitable[Any]]
"""A unary method answered in this process: (request, call metadata) -> response; raises
``grpc.aio.AioRpcError`` as the channel would."""


class _LocalMethod:
    """A stub method (``await method(request, metadata=...)``) served in this process."""

    def __init__(self, call: LocalCall) -> None:
        self._call = call

    def __call__(self, request: Any, *, metadata: Metadata = (), **_: Any) -> Awaitable[Any]:
        return self._call(request, metadata)


class _LocalStub:
    """A service's stub whose unary methods run in this process; the rest use the channel."""

    def __init__(self, remote: Any, service: str, calls: Mapping[str, LocalCall]) -> None:
        self._remote = remote
        self._service = service
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        call = self._calls.get(f"/{self._service}/{name}")
        return _LocalMethod(call) if call is not None else getattr(self._remote, name)


def _service_name(stub: Any) -> str:
    """The full gRPC service name a generated stub talks to (from its ``_pb2`` module)."""
    messages = importlib.import_module(type(stub).__module__.removesuffix("_grpc"))
    service = type(stub).__name__.removesuffix("Stub")
    return str(messages.DESCRIPTOR.services_by_name[service].full_name)


@dataclass(frozen=True)
class Stubs:
    """One stub per gRPC service, all sharing a channel."""

    jobs: job_service_pb2_grpc.JobServiceStub
    qpus: qpu_service_pb2_grpc.QpuServiceStub
    bookings: booking_service_pb2_grpc.BookingServiceStub
    accounts: account_service_pb2_grpc.AccountServiceStub
    notifications: notification_service_pb2_grpc.NotificationServiceStub
    admin: admin_service_pb2_grpc.AdminServiceStub
    events: event_service_pb2_grpc.EventServiceStub
    nng: nng_service_pb2_grpc.NngCompatServiceStub

    @classmethod
    def for_channel(
        cls, channel: grpc.aio.Channel, local: Mapping[str, LocalCall] | None = None
    ) -> Stubs:
        """Create every stub on ``channel``; methods in ``local`` are answered in process."""
        stubs = cls._on(channel)
        if not local:
            return stubs
        wrapped: dict[str, Any] = {
            name: _LocalStub(stub, _service_name(stub), local) for name, stub in vars(stubs).items()
        }
        return cls(**wrapped)

    @classmethod
    def _on(cls, channel: grpc.aio.Channel) -> Stubs:
        return cls(
            jobs=job_service_pb2_grpc.JobServiceStub(channel),
            qpus=qpu_service_pb2_grpc.QpuServiceStub(channel),
            bookings=booking_service_pb2_grpc.BookingServiceStub(channel),
            accounts=account_service_pb2_grpc.AccountServiceStub(channel),
            notifications=notification_service_pb2_grpc.NotificationServiceStub(channel),
            admin=admin_service_pb2_grpc.AdminServiceStub(channel),
            events=event_service_pb2_grpc.EventServiceStub(channel),
            nng=nng_service_pb2_grpc.NngCompatServiceStub(channel),
        )


class GrpcClients:
    """Owns the channel. Opened in the app lifespan, or lazily on first use when the app is
    mounted inside another ASGI app whose lifespan does not reach it."""

    def __init__(self, target: str, local: Mapping[str, LocalCall] | None = None) -> None:
        """Remember the target (and the in-process methods); nothing is connected yet."""
        self._target = target
        self._local = local
        self._channel: grpc.aio.Channel | None = None
        self._stubs: Stubs | None = None

    def open(self) -> None:
        """Open the channel (idempotent)."""
        if self._channel is None:
            logger.info("[gateway] opening gRPC channel target=%s", self._target)
            self._channel = grpc.aio.insecure_channel(self._target, options=_CHANNEL_OPTIONS)
            self._stubs = Stubs.for_channel(self._channel, self._local)

    @property
    def stubs(self) -> Stubs:
        """The stubs, opening the channel on first use."""
        self.open()
        assert self._stubs is not None
        return self._stubs

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        channel, self._channel, self._stubs = self._channel, None, None
        if channel is not None:
            await channel.close()


CLIENT_ADDRESS_KEY = "x-qpi-client-address"
"""Metadata naming the HTTP client's address; the server trusts it only from its own
private socket (the gateway), never from a network peer."""


def address_metadata(address: str) -> Metadata:
    """Call metadata forwarding the HTTP client's address (nothing when unknown)."""
    return ((CLIENT_ADDRESS_KEY, address),) if address else ()


def bearer_metadata(token: str | None) -> Metadata:
    """Return the call metadata forwarding ``token``, or nothing for anonymous calls."""
    if not token:
        return ()
    return (("authorization", f"Bearer {token}"),)


async def call(rpc: Callable[..., Any], request: Any, metadata: Metadata = ()) -> Any:
    """Invoke one unary RPC and turn any gRPC failure into an :class:`errors.ApiError`.

    Args:
        rpc: A bound stub method, e.g. ``stubs.jobs.GetJob``.
        request: The request message.
        metadata: Call metadata (credentials).

    Returns:
        The response message.

    Raises:
        errors.ApiError: If the call failed.
    """
    try:
        return await rpc(request, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        raise errors.api_error_from_rpc(exc) from exc
