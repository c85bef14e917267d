"""Shared plumbing of :class:`qpi.sdk.QPIClient`: stubs, metadata, error translation, paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import field_mask_pb2, timestamp_pb2

from qpi.sdk._transport import open_channel, parse_target
from qpi.sdk.errors import from_rpc_error
from qpi.v1 import (
    account_service_pb2_grpc,
    admin_service_pb2_grpc,
    booking_service_pb2_grpc,
    event_service_pb2_grpc,
    job_service_pb2_grpc,
    notification_service_pb2_grpc,
    qpu_service_pb2_grpc,
)

T = TypeVar("T")

_MAX_PAGE_SIZE = 1000


def to_timestamp(value: dt.datetime | str) -> timestamp_pb2.Timestamp:
    """Converts an aware datetime or ISO-8601 text to a Timestamp; naive means UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC))
    return stamp


def field_mask(*paths: str) -> field_mask_pb2.FieldMask:
    """Builds a FieldMask naming the fields an Update RPC should change."""
    return field_mask_pb2.FieldMask(paths=list(paths))


class ClientBase:
    """Owns the channel, the credentials and one stub per service."""

    def __init__(
        self,
        target: str,
        *,
        api_token: str | None = None,
        tls: bool | None = None,
        ca_pem: bytes | None = None,
        ca_fingerprint: str | None = None,
        timeout: float = 30.0,
        interceptors: Sequence[Any] = (),
    ) -> None:
        self._endpoint = parse_target(target, tls)
        self._token = api_token
        self._timeout = timeout
        self._channel = open_channel(
            self._endpoint,
            ca_pem=ca_pem,
            ca_fingerprint=ca_fingerprint,
            timeout=timeout,
            interceptors=interceptors,
        )
        channel = self._channel
        self._jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self._qpus = qpu_service_pb2_grpc.QpuServiceStub(channel)
        self._accounts = account_service_pb2_grpc.AccountServiceStub(channel)
        self._bookings = booking_service_pb2_grpc.BookingServiceStub(channel)
        self._notifications = notification_service_pb2_grpc.NotificationServiceStub(channel)
        self._events = event_service_pb2_grpc.EventServiceStub(channel)
        self._admin = admin_service_pb2_grpc.AdminServiceStub(channel)

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._endpoint.address

    def _metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        if not self._token:
            return ()
        return (("authorization", f"Bearer {self._token}"),)

    def _unary(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        """Calls a unary RPC with credentials and deadline, translating errors."""
        try:
            return method(
                request,
                metadata=self._metadata(),
                timeout=self._timeout if timeout is None else timeout,
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    def _paginate(
        self,
        method: Callable[..., Any],
        request: Any,
        field: str,
        convert: Callable[[Any], T],
        limit: int | None = None,
    ) -> Iterator[T]:
        """Yields converted items across pages until the end or ``limit`` items."""
        if limit is not None and limit <= 0:
            return
        request.page_size = min(limit, _MAX_PAGE_SIZE) if limit else 0
        produced = 0
        while True:
            response = self._unary(method, request)
            for item in getattr(response, field):
                yield convert(item)
                produced += 1
                if limit is not None and produced >= limit:
                    return
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def close(self) -> None:
        """Closes the channel; open streams are cancelled."""
        self._channel.close()
