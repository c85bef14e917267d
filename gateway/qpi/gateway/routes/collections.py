"""PocketBase-style collection API: ``/api/collections/{name}/records[/{id}]``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from qpi.gateway import errors, filters
from qpi.gateway.collections.accounts import ApiTokensCollection, UsersCollection
from qpi.gateway.collections.base import Collection
from qpi.gateway.collections.bookings import TimeRequestsCollection, TimeSlotsCollection
from qpi.gateway.collections.drivers import DriversCollection, TelemetryEventsCollection
from qpi.gateway.collections.jobs import JobsCollection
from qpi.gateway.collections.notifications import NotificationsCollection
from qpi.gateway.collections.registry import QpusCollection
from qpi.gateway.config import GatewayConfig
from qpi.gateway.context import CtxDep
from qpi.gateway.expand import expand_records, parse_expand
from qpi.gateway.listing import DEFAULT_PER_PAGE, page_envelope, parse_sort, sort_records
from qpi.gateway.models import ERROR_RESPONSES, RecordPage

JsonObject = Annotated[dict[str, Any], Body(description="Record fields (JSON object).")]


async def matching(
    node: filters.Node | None, records: list[dict[str, Any]]
) -> list[Mapping[str, Any]]:
    """The records matching a filter; ``~`` filters run in a worker thread, with a budget.

    The cost of ``~`` grows with the size of the fields it searches, so it never runs on
    the event loop that also serves gRPC, the driver streams and dispatch.
    """
    if filters.uses_like(node):
        return await asyncio.to_thread(filters.select, node, records)
    return filters.select(node, records)


def build_registry(config: GatewayConfig) -> dict[str, Collection]:
    """Map the configured collection names to their implementations."""
    return {
        config.users_collection: UsersCollection(config.users_collection),
        config.qpus_collection: QpusCollection(config.qpus_collection),
        config.timeslots_collection: TimeSlotsCollection(config.timeslots_collection),
        config.jobs_collection: JobsCollection(config.jobs_collection),
        config.qpu_time_requests_collection: TimeRequestsCollection(
            config.qpu_time_requests_collection
        ),
        config.notifications_collection: NotificationsCollection(config.notifications_collection),
        config.api_tokens_collection: ApiTokensCollection(config.api_tokens_collection),
        config.drivers_collection: DriversCollection(config.drivers_collection),
        config.events_collection: TelemetryEventsCollection(config.events_collection),
    }


def build_router(config: GatewayConfig) -> APIRouter:
    """Create the collection routes for the configured names."""
    registry = build_registry(config)
    router = APIRouter(
        prefix="/api/collections/{collection}/records",
        tags=["collections"],
        responses=ERROR_RESPONSES,
    )

    def lookup(name: str) -> Collection:
        found = registry.get(name)
        if found is None:
            raise errors.ApiError(404, "Missing collection context.")
        return found

    def tag(coll: Collection, record: dict[str, Any]) -> dict[str, Any]:
        return {"collectionId": coll.name, "collectionName": coll.name, **record}

    @router.get("", response_model=RecordPage)
    async def list_records(
        collection: str,
        ctx: CtxDep,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, Query(alias="perPage", ge=1, le=1_000_000)] = DEFAULT_PER_PAGE,
        sort: Annotated[str, Query(max_length=512)] = "",
        filter: Annotated[str, Query(max_length=filters.MAX_FILTER_LENGTH)] = "",  # noqa: A002
        expand: Annotated[str, Query(max_length=512)] = "",
        fields: Annotated[str, Query(max_length=512, description="Ignored.")] = "",
    ) -> JSONResponse:
        """List records the caller may see, with PocketBase filter, sort and paging."""
        coll = lookup(collection)
        allowed = coll.fields | set(coll.relations)
        node = filters.parse(filter, allowed)
        keys = parse_sort(sort, allowed)
        wanted = parse_expand(expand, coll.relations)
        result = await coll.list_page(ctx, node, keys, page, per_page)
        if result is None:
            items = await matching(node, await coll.list_records(ctx))
            result = page_envelope(sort_records(items, keys), page, per_page)
        result["items"] = [tag(coll, r) for r in result["items"]]
        await expand_records(ctx, result["items"], wanted, coll.relations)
        return JSONResponse(result)

    @router.get("/{record_id}")
    async def view_record(
        collection: str,
        record_id: str,
        ctx: CtxDep,
        expand: Annotated[str, Query(max_length=512)] = "",
    ) -> JSONResponse:
        """One record."""
        coll = lookup(collection)
        wanted = parse_expand(expand, coll.relations)
        record = tag(coll, await coll.view(ctx, record_id))
        await expand_records(ctx, [record], wanted, coll.relations)
        return JSONResponse(record)

    @router.post("")
    async def create_record(collection: str, body: JsonObject, ctx: CtxDep) -> JSONResponse:
        """Create a record; the server applies every rule of the collection."""
        coll = lookup(collection)
        return JSONResponse(tag(coll, await coll.create(ctx, body)))

    @router.patch("/{record_id}")
    async def update_record(
        collection: str, record_id: str, body: JsonObject, ctx: CtxDep
    ) -> JSONResponse:
        """Change a record (only the keys present)."""
        coll = lookup(collection)
        return JSONResponse(tag(coll, await coll.update(ctx, record_id, body)))

    @router.delete("/{record_id}", status_code=204, response_class=Response)
    async def delete_record(collection: str, record_id: str, ctx: CtxDep) -> Response:
        """Delete a record (204 without body)."""
        coll = lookup(collection)
        await coll.delete(ctx, record_id)
        return Response(status_code=204)

    return router
