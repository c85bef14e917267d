"""Handshakes of the published NNG `qpi-driver` daemons (compatibility transport).

`POST /api/op/drivers/connect` is what drivers 0.1 and later send at start-up;
`POST /api/op/qpus/connect` is the legacy (0.0.x) form. Both authenticate with the
driver's token in the body and answer where its two TLS NNG listeners are; the server
has opened them before the answer leaves.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from qpi.gateway import errors, rpc
from qpi.gateway.context import Ctx, PublicCtxDep
from qpi.gateway.models import Text
from qpi.gateway.openapi import responses
from qpi.v1 import nng_service_pb2 as pb

# The driver's token travels in the body, so these routes declare no header credentials.
router = APIRouter(
    prefix="/api/op", tags=["drivers"], responses=responses(400, 401, 403, 404, 413, 429, 503)
)

_BODY = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class DriverConnect(BaseModel):
    """Body of `POST /api/op/drivers/connect`."""

    model_config = _BODY
    token: Text = Field(default="", max_length=200, description="The driver's access token.")
    name: Text = Field(
        default="", max_length=200, description="Sent by 0.1 drivers; the registered name is kept."
    )
    host: Text = Field(default="", max_length=255, description="Host the driver runs on.")
    version: Text = Field(default="", max_length=100, description="Driver software version.")


class DriverConnectedOut(BaseModel):
    """Response of `POST /api/op/drivers/connect`."""

    status: str = Field(description='Always "success".')
    driver_id: str
    name: str = Field(description="The driver's registered name (0.4 drivers use it).")
    qpu: str = Field(description="Id of the QPU the driver serves.")
    nng_host: str = Field(description="Host to dial; the server certificate names it.")
    nng_in_port: int = Field(description="Server PUSH listener: jobs to the driver.")
    nng_out_port: int = Field(description="Server PULL listener: results from the driver.")
    tls_hash: str = Field(description="SHA-256 of the CA certificate (DER), lowercase hex.")
    ca_fingerprint: str = Field(description="Same as tls_hash.")
    auth_token: str = Field(description="Echo of the token, as the original server answered.")


class LegacyQpuConnect(BaseModel):
    """Body of the legacy `POST /api/op/qpus/connect`."""

    model_config = _BODY
    name: str = Field(default="", max_length=200, description="Accepted and ignored.")
    access_token: str = Field(default="", max_length=200, description="The driver's token.")
    executor_type: str | None = Field(default=None, description="Accepted and ignored.")
    device_config: Any = Field(default=None, description="Accepted and ignored.")


class LegacyQpuConnectedOut(BaseModel):
    """Response of the legacy `POST /api/op/qpus/connect`."""

    status: str = Field(description='Always "success".')
    nng_host: str
    nng_command_port: int = Field(description="Server PUSH listener: jobs to the driver.")
    nng_result_port: int = Field(description="Server PULL listener: results from the driver.")
    tls_hash: str = Field(description="SHA-256 of the CA certificate (DER), lowercase hex.")
    auth_token: str = Field(description="Echo of the token, as the original server answered.")


async def _open(
    ctx: Ctx, request: Request, token: str, host: str, version: str, wire: int
) -> pb.OpenNngChannelResponse:
    # The token travels in the body; the service reads it as call credentials, and call
    # metadata only carries printable ASCII.
    token = token.strip()
    if not (token.isascii() and token.isprintable()):
        raise errors.ApiError(401, "Invalid access token.")
    seen_from = request.client.host if request.client else ""
    response: pb.OpenNngChannelResponse = await rpc.call(
        ctx.stubs.nng.OpenNngChannel,
        pb.OpenNngChannelRequest(
            host=host or seen_from,
            version=version,
            wire=pb.OpenNngChannelRequest.Wire.ValueType(wire),
        ),
        rpc.bearer_metadata(token),
    )
    return response


@router.post("/drivers/connect")
async def connect_driver(
    body: DriverConnect, request: Request, ctx: PublicCtxDep
) -> DriverConnectedOut:
    """Handshake of an NNG driver: its listener ports, opened before this answer."""
    opened = await _open(
        ctx, request, body.token, body.host, body.version, pb.OpenNngChannelRequest.WIRE_ENVELOPE
    )
    return DriverConnectedOut(
        status="success",
        driver_id=opened.driver_id,
        name=opened.name,
        qpu=opened.qpu_id,
        nng_host=opened.nng_host,
        nng_in_port=opened.nng_in_port,
        nng_out_port=opened.nng_out_port,
        tls_hash=opened.ca_fingerprint,
        ca_fingerprint=opened.ca_fingerprint,
        auth_token=body.token,
    )


@router.post("/qpus/connect")
async def connect_legacy_qpu(
    body: LegacyQpuConnect, request: Request, ctx: PublicCtxDep
) -> LegacyQpuConnectedOut:
    """Legacy handshake (drivers 0.0.x): bare JSON messages instead of envelopes."""
    opened = await _open(
        ctx, request, body.access_token, "", "", pb.OpenNngChannelRequest.WIRE_LEGACY
    )
    return LegacyQpuConnectedOut(
        status="success",
        nng_host=opened.nng_host,
        nng_command_port=opened.nng_in_port,
        nng_result_port=opened.nng_out_port,
        tls_hash=opened.ca_fingerprint,
        auth_token=body.access_token,
    )
