"""NngCompatService: the HTTP handshake of NNG drivers, relayed by the gateway."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.drivers.nng.envelope import ENVELOPE, LEGACY
from qpi.server.drivers.nng.transport import NngTransport
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import unary
from qpi.v1 import nng_service_pb2 as pb
from qpi.v1 import nng_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class NngCompatServicer(nng_service_pb2_grpc.NngCompatServiceServicer):
    """Authenticates the driver and lets the NNG transport open its listeners."""

    def __init__(self, auth: Authenticator, transport: NngTransport) -> None:
        self._auth = auth
        self._transport = transport

    @unary
    async def OpenNngChannel(
        self, request: pb.OpenNngChannelRequest, context: Ctx
    ) -> pb.OpenNngChannelResponse:
        identity = await self._auth.driver(context)
        wire = LEGACY if request.wire == pb.OpenNngChannelRequest.WIRE_LEGACY else ENVELOPE
        opened = await self._transport.open(
            identity, host=request.host, version=request.version, wire=wire
        )
        return pb.OpenNngChannelResponse(
            driver_id=opened.driver_id,
            name=opened.name,
            qpu_id=opened.qpu_id,
            nng_host=opened.nng_host,
            nng_in_port=opened.in_port,
            nng_out_port=opened.out_port,
            ca_fingerprint=opened.ca_fingerprint,
        )
