"""Public routes: the root CA certificate and discovery facts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from qpi.gateway import errors, rpc
from qpi.gateway.context import Ctx, PublicCtxDep
from qpi.gateway.models import ServerInfoOut
from qpi.gateway.openapi import responses
from qpi.v1 import admin_service_pb2

router = APIRouter(prefix="/api/pub", tags=["public"])

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


async def server_info(ctx: Ctx) -> admin_service_pb2.GetServerInfoResponse:
    """Fetch the public server facts (no credentials are forwarded)."""
    resp: admin_service_pb2.GetServerInfoResponse = await rpc.call(
        ctx.stubs.admin.GetServerInfo, admin_service_pb2.GetServerInfoRequest()
    )
    return resp


@router.get(
    "/root-ca.pem",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
            "description": "The root CA certificate (PEM).",
        },
        **responses(404, 503),
    },
)
async def root_ca(ctx: PublicCtxDep) -> Response:
    """Download the root CA certificate drivers pin (PEM, first certificate only)."""
    info = await server_info(ctx)
    pem = info.ca_certificate_pem
    start = pem.find(_PEM_BEGIN)
    if start < 0:
        raise errors.ApiError(404, "Root CA certificate not found.")
    return Response(content=pem[start:], media_type="application/x-pem-file")


@router.get("/server-info", responses=responses(503))
async def get_server_info(ctx: PublicCtxDep) -> ServerInfoOut:
    """gRPC port and TLS mode and the CA fingerprint, for driver discovery."""
    info = await server_info(ctx)
    return ServerInfoOut(
        version=info.version,
        grpc_port=info.grpc_port,
        grpc_tls=info.grpc_tls,
        ca_fingerprint=info.ca_fingerprint,
    )
