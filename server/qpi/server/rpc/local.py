"""The REST gateway's calls to the servicers, made in this process without the gRPC hop.

`qpi serve` runs the gateway on the same event loop as the gRPC server. Sending each REST
request's call through a socket to ourselves cost about 1 ms of the loop's time per call
(client and server framing, HTTP/2, a copy of every message each way), a third of a small
REST request. Unary calls instead invoke the servicer method itself, through the same
``unary`` error translator: the caller sees the response message or the same
``AioRpcError`` (status code, message and ``google.rpc`` details) the channel would have
raised. Streaming calls (the event feed) still use the channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn

import grpc

from qpi.server.rpc.server import SERVICES

LocalCall = Callable[[Any, Sequence[tuple[str, str]]], Awaitable[Any]]
"""(request, call metadata) -> response; raises ``grpc.aio.AioRpcError`` on failure."""

LOCAL_PEER = "unix:in-process"
"""The peer servicers see: the gateway, as over its private Unix socket (so the client
address it forwards is trusted, see :func:`qpi.server.rpc.credentials.client_address`)."""


class _LocalContext:
    """What servicers use of ``grpc.aio.ServicerContext``, for an in-process call."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return LOCAL_PEER

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        raise grpc.aio.AioRpcError(
            status.code,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(*status.trailing_metadata),
            status.details,
        )


def _local(method: Callable[[Any, Any], Awaitable[Any]]) -> LocalCall:
    async def call(request: Any, metadata: Sequence[tuple[str, str]]) -> Any:
        return await method(request, _LocalContext(metadata))

    return call


def local_calls(servicers: Mapping[str, object]) -> dict[str, LocalCall]:
    """Every unary method of the servicers by its gRPC path (``/qpi.v1.JobService/GetJob``)."""
    calls: dict[str, LocalCall] = {}
    for key, service in SERVICES:
        servicer = servicers[key]
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            calls[f"/{service.full_name}/{method.name}"] = _local(getattr(servicer, method.name))
    return calls
