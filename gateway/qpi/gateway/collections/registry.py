"""``qpus`` collection (QpuService): public reading, administrator changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from qpi.gateway import filters, records
from qpi.gateway.collections.base import BodyReader, Collection, server_page
from qpi.gateway.context import Ctx
from qpi.gateway.listing import SortKey
from qpi.v1 import qpu_pb2, qpu_service_pb2


class QpusCollection(Collection):
    """QPUs; ``status`` is derived by the server and cannot be written."""

    fields = frozenset({"id", "name", "status", "num_qubits", "enabled", "created", "updated"})

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """QPUs, a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.qpus.ListQpus,
            qpu_service_pb2.ListQpusRequest(),
            "qpus",
            records.qpu_object,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One QPU by id or name."""
        resp = await ctx.call(ctx.stubs.qpus.GetQpu, qpu_service_pb2.GetQpuRequest(id=record_id))
        return records.qpu_object(resp.qpu)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Register a QPU without a driver (use ``/api/op/qpus/create`` to get a driver token)."""
        reader = BodyReader(body, "create")
        name = reader.text("name", required=True, max_len=255)
        num_qubits = reader.int32("num_qubits") or 0
        enabled = reader.flag("enabled")
        reader.check()
        qpu = qpu_pb2.Qpu(
            name=name or "", num_qubits=num_qubits, enabled=True if enabled is None else enabled
        )
        resp = await ctx.call(
            ctx.stubs.qpus.CreateQpu,
            qpu_service_pb2.CreateQpuRequest(qpu=qpu, create_driver=False),
        )
        return records.qpu_object(resp.qpu)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change name, enabled or num_qubits (administrators)."""
        reader = BodyReader(body, "update")
        qpu = qpu_pb2.Qpu(id=record_id)
        paths: list[str] = []
        if (name := reader.text("name", max_len=255)) is not None:
            qpu.name = name
            paths.append("name")
        if (enabled := reader.flag("enabled")) is not None:
            qpu.enabled = enabled
            paths.append("enabled")
        if (num_qubits := reader.int32("num_qubits")) is not None:
            qpu.num_qubits = num_qubits
            paths.append("num_qubits")
        reader.check()
        resp = await ctx.call(
            ctx.stubs.qpus.UpdateQpu,
            qpu_service_pb2.UpdateQpuRequest(
                qpu=qpu, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )
        return records.qpu_object(resp.qpu)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Delete a QPU with its drivers and bookings (administrators)."""
        await ctx.call(ctx.stubs.qpus.DeleteQpu, qpu_service_pb2.DeleteQpuRequest(id=record_id))
