"""Administrator operations: version, QPU and driver registration, enable switches."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.collections.drivers import create_driver, set_driver_enabled
from qpi.gateway.context import AdminDep
from qpi.gateway.models import (
    ERROR_RESPONSES,
    DriverCreate,
    DriverCreatedOut,
    DriverToggle,
    DriverToggledOut,
    QpuCreate,
    QpuCreatedOut,
    QpuToggle,
    QpuToggledOut,
    VersionOut,
)
from qpi.gateway.snippets import driver_snippets
from qpi.v1 import admin_service_pb2, qpu_pb2, qpu_service_pb2

router = APIRouter(prefix="/api/op", tags=["admin"], responses=ERROR_RESPONSES)


@router.get("/version", response_model=VersionOut)
async def version(ctx: AdminDep) -> JSONResponse:
    """Server version (administrators)."""
    resp = await ctx.call(ctx.stubs.admin.GetVersion, admin_service_pb2.GetVersionRequest())
    return JSONResponse({"version": resp.version})


@router.post("/qpus/create", status_code=201, response_model=QpuCreatedOut)
async def create_qpu(body: QpuCreate, ctx: AdminDep) -> JSONResponse:
    """Register a QPU and its first driver; the driver's access token is shown only here."""
    qpu = qpu_pb2.Qpu(name=body.name, enabled=body.enabled, num_qubits=body.num_qubits or 0)
    resp: qpu_service_pb2.CreateQpuResponse = await ctx.call(
        ctx.stubs.qpus.CreateQpu, qpu_service_pb2.CreateQpuRequest(qpu=qpu, create_driver=True)
    )
    created = records.qpu_object(resp.qpu)
    return JSONResponse(
        {
            "id": created["id"],
            "name": created["name"],
            "status": created["status"],
            "enabled": created["enabled"],
            "num_qubits": created["num_qubits"],
            "access_token": resp.access_token,
            "ca_fingerprint": resp.ca_fingerprint,
            "driver_id": resp.driver.id,
        },
        status_code=201,
    )


@router.post("/qpu/toggle", response_model=QpuToggledOut)
async def toggle_qpu(body: QpuToggle, ctx: AdminDep) -> JSONResponse:
    """Enable or disable a QPU given its id or name; a disabled QPU receives no jobs."""
    found: qpu_service_pb2.GetQpuResponse = await ctx.call(
        ctx.stubs.qpus.GetQpu, qpu_service_pb2.GetQpuRequest(id=body.id)
    )
    resp: qpu_service_pb2.UpdateQpuResponse = await ctx.call(
        ctx.stubs.qpus.UpdateQpu,
        qpu_service_pb2.UpdateQpuRequest(
            qpu=qpu_pb2.Qpu(id=found.qpu.id, enabled=body.enabled),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
    )
    qpu = records.qpu_object(resp.qpu)
    return JSONResponse(
        {"id": qpu["id"], "name": qpu["name"], "enabled": qpu["enabled"], "status": qpu["status"]}
    )


def _public_address(request: Request) -> str:
    """The address drivers should use: this request's scheme (or a proxy's) and host."""
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}"


@router.post("/drivers/create", status_code=201, response_model=DriverCreatedOut)
async def create_driver_route(body: DriverCreate, request: Request, ctx: AdminDep) -> JSONResponse:
    """Register a driver for a QPU; its access token and setup snippets are shown only here."""
    resp = await create_driver(ctx, body.model_dump(exclude={"events"}))
    version = await ctx.call(ctx.stubs.admin.GetVersion, admin_service_pb2.GetVersionRequest())
    record = records.driver_record(resp.driver)
    address = _public_address(request)
    return JSONResponse(
        {
            **{k: record[k] for k in ("id", "name", "qpu", "kind", "language", "status")},
            "events": body.events or [],
            "enabled": record["enabled"],
            "token": resp.access_token,
            "ca_fingerprint": resp.ca_fingerprint,
            "qpi_addr": address,
            "driver_version": version.version,
            "snippets": driver_snippets(
                kind=record["kind"],
                name=record["name"],
                token=resp.access_token,
                qpi_addr=address,
                ca_fingerprint=resp.ca_fingerprint,
            ),
        },
        status_code=201,
    )


@router.post("/drivers/toggle", response_model=DriverToggledOut)
async def toggle_driver(body: DriverToggle, ctx: AdminDep) -> JSONResponse:
    """Enable or disable a driver; disabling disconnects it at once."""
    driver = records.driver_record(await set_driver_enabled(ctx, body.id, body.enabled))
    return JSONResponse({k: driver[k] for k in ("id", "name", "enabled", "status")})
