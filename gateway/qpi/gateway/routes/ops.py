"""Administrator operations: version, QPU registration and the QPU enable switch."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.context import AdminDep
from qpi.gateway.models import (
    ERROR_RESPONSES,
    QpuCreate,
    QpuCreatedOut,
    QpuToggle,
    QpuToggledOut,
    VersionOut,
)
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
