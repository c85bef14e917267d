"""Administrator operations: version, QPU and driver registration, enable switches."""

from __future__ import annotations

from fastapi import APIRouter, Request
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.collections.drivers import create_driver, set_driver_enabled
from qpi.gateway.context import AdminDep
from qpi.gateway.models import (
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
from qpi.gateway.openapi import api
from qpi.gateway.snippets import EXECUTOR_KINDS, driver_snippets
from qpi.v1 import admin_service_pb2, qpu_pb2, qpu_service_pb2

router = APIRouter(prefix="/api/op", tags=["admin"])


@router.get("/version", responses=api(403))
async def version(ctx: AdminDep) -> VersionOut:
    """Server version (administrators)."""
    resp = await ctx.call(ctx.stubs.admin.GetVersion, admin_service_pb2.GetVersionRequest())
    return VersionOut(version=resp.version)


@router.post("/qpus/create", status_code=201, responses=api(403, 409, 413))
async def create_qpu(body: QpuCreate, request: Request, ctx: AdminDep) -> QpuCreatedOut:
    """Register a QPU and its first driver; the driver's access token and setup snippets
    (start command, systemd unit) are shown only here."""
    qpu = qpu_pb2.Qpu(name=body.name, enabled=body.enabled, num_qubits=body.num_qubits or 0)
    kind = body.executor_type if body.executor_type in EXECUTOR_KINDS else ""
    resp: qpu_service_pb2.CreateQpuResponse = await ctx.call(
        ctx.stubs.qpus.CreateQpu,
        qpu_service_pb2.CreateQpuRequest(qpu=qpu, create_driver=True, driver_kind=kind),
    )
    version = await ctx.call(ctx.stubs.admin.GetVersion, admin_service_pb2.GetVersionRequest())
    created = records.qpu_object(resp.qpu)
    address = _public_address(request)
    return QpuCreatedOut(
        id=created["id"],
        name=created["name"],
        status=created["status"],
        enabled=created["enabled"],
        num_qubits=created["num_qubits"],
        access_token=resp.access_token,
        ca_fingerprint=resp.ca_fingerprint,
        driver_id=resp.driver.id,
        driver_name=resp.driver.name,
        driver_kind=resp.driver.kind,
        qpi_addr=address,
        driver_version=version.version,
        # The same builder as /api/op/drivers/create: what a lab pastes on the QPU host.
        snippets=driver_snippets(
            kind=resp.driver.kind,
            name=resp.driver.name,
            token=resp.access_token,
            qpi_addr=address,
            ca_fingerprint=resp.ca_fingerprint,
        ),
    )


@router.post("/qpu/toggle", responses=api(403, 404, 409, 413))
async def toggle_qpu(body: QpuToggle, ctx: AdminDep) -> QpuToggledOut:
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
    return QpuToggledOut.model_validate(records.qpu_object(resp.qpu))


def _public_address(request: Request) -> str:
    """The address drivers should use: this request's scheme (or a proxy's) and host."""
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}"


@router.post("/drivers/create", status_code=201, responses=api(403, 404, 409, 413))
async def create_driver_route(
    body: DriverCreate, request: Request, ctx: AdminDep
) -> DriverCreatedOut:
    """Register a driver for a QPU; its access token and setup snippets are shown only here."""
    resp = await create_driver(ctx, body.model_dump(exclude={"events"}))
    version = await ctx.call(ctx.stubs.admin.GetVersion, admin_service_pb2.GetVersionRequest())
    record = records.driver_record(resp.driver)
    address = _public_address(request)
    return DriverCreatedOut.model_validate(
        {
            **record,
            "events": body.events or [],
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
        }
    )


@router.post("/drivers/toggle", responses=api(403, 404, 409, 413))
async def toggle_driver(body: DriverToggle, ctx: AdminDep) -> DriverToggledOut:
    """Enable or disable a driver; disabling disconnects it at once."""
    driver = records.driver_record(await set_driver_enabled(ctx, body.id, body.enabled))
    return DriverToggledOut.model_validate(driver)
