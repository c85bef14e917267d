"""``drivers`` and ``events`` collections (QpuService drivers, AdminService telemetry).

Both are administrators' views: drivers carry hosts and versions, telemetry carries lab
readings. A driver's token is shown once, by the create call, and never again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from qpi.gateway import filters, records
from qpi.gateway.collections.base import BodyReader, Collection, server_page
from qpi.gateway.context import Ctx
from qpi.gateway.listing import MAX_PER_PAGE, SortKey, page_of
from qpi.gateway.pushdown import filter_message, sort_messages
from qpi.v1 import admin_service_pb2, qpu_pb2, qpu_service_pb2


async def create_driver(ctx: Ctx, body: Mapping[str, Any]) -> qpu_service_pb2.CreateDriverResponse:
    """Register a driver from a loosely typed body (shared by the collection and the op route).

    Raises:
        errors.ApiError: 400 naming every missing or invalid field.
    """
    reader = BodyReader(body, "create")
    name = reader.text("name", required=True, max_len=255)
    qpu = reader.text("qpu", required=True, max_len=255)
    kind = reader.text("kind", required=True, max_len=64)
    language = reader.text("language", max_len=64)
    enabled = reader.flag("enabled")
    reader.check()
    driver = qpu_pb2.Driver(
        name=name or "",
        qpu_id=qpu or "",
        kind=kind or "",
        language=language or "python",
        enabled=True if enabled is None else enabled,
    )
    response: qpu_service_pb2.CreateDriverResponse = await ctx.call(
        ctx.stubs.qpus.CreateDriver, qpu_service_pb2.CreateDriverRequest(driver=driver)
    )
    return response


async def set_driver_enabled(ctx: Ctx, driver_id: str, enabled: bool) -> qpu_pb2.Driver:
    """Enable or disable a driver; disabling also disconnects it."""
    response: qpu_service_pb2.UpdateDriverResponse = await ctx.call(
        ctx.stubs.qpus.UpdateDriver,
        qpu_service_pb2.UpdateDriverRequest(
            driver=qpu_pb2.Driver(id=driver_id, enabled=enabled),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
    )
    return response.driver


class DriversCollection(Collection):
    """Drivers (administrators); ``status`` and connection facts are server-derived."""

    fields = frozenset(
        {"id", "name", "kind", "language", "status", "enabled", "host", "version", "created"}
    )
    relations = {"qpu": "qpus"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """Drivers, a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.qpus.ListDrivers,
            qpu_service_pb2.ListDriversRequest(),
            "drivers",
            records.driver_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One driver."""
        resp = await ctx.call(
            ctx.stubs.qpus.GetDriver, qpu_service_pb2.GetDriverRequest(id=record_id)
        )
        return records.driver_record(resp.driver)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Register a driver; its raw token is returned once as ``token``."""
        resp = await create_driver(ctx, body)
        return {**records.driver_record(resp.driver), "token": resp.access_token}

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Rename a driver or switch it on or off."""
        reader = BodyReader(body, "update")
        driver = qpu_pb2.Driver(id=record_id)
        paths: list[str] = []
        if (name := reader.text("name", max_len=255)) is not None:
            driver.name = name
            paths.append("name")
        if (enabled := reader.flag("enabled")) is not None:
            driver.enabled = enabled
            paths.append("enabled")
        for key in ("qpu", "kind", "language", "token", "status"):
            if reader.has(key):
                reader.fail(key, "Cannot be changed; register a new driver instead.")
        reader.check()
        if not paths:
            return await self.view(ctx, record_id)
        resp = await ctx.call(
            ctx.stubs.qpus.UpdateDriver,
            qpu_service_pb2.UpdateDriverRequest(
                driver=driver, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )
        return records.driver_record(resp.driver)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Delete a driver; a connected one is disconnected."""
        await ctx.call(
            ctx.stubs.qpus.DeleteDriver, qpu_service_pb2.DeleteDriverRequest(id=record_id)
        )


class TelemetryEventsCollection(Collection):
    """Telemetry the drivers reported (administrators; read-only)."""

    fields = frozenset({"id", "source", "type", "ts"})
    relations = {"driver": "drivers", "qpu": "qpus"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """One page, filtered, sorted and counted by the server in SQL."""
        page, per_page = max(page, 1), min(max(per_page, 1), MAX_PER_PAGE)
        request = admin_service_pb2.ListTelemetryEventsRequest(
            skip=(page - 1) * per_page,
            page_size=per_page,
            sort=sort_messages(keys),
            skip_total=not count_total,
        )
        if query is not None:
            request.filter.CopyFrom(filter_message(query))
        resp = await ctx.call(ctx.stubs.admin.ListTelemetryEvents, request)
        items = [records.telemetry_record(e) for e in resp.events]
        return page_of(items, int(resp.total_size), page, per_page, capped=resp.total_size_capped)

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One event."""
        resp = await ctx.call(
            ctx.stubs.admin.GetTelemetryEvent,
            admin_service_pb2.GetTelemetryEventRequest(id=record_id),
        )
        return records.telemetry_record(resp.event)
