"""PocketBase-style collection API: ``/api/collections/{name}/records[/{id}]``.

The routes are registered once per configured collection, so every collection documents
(and returns) its own record schema and only the operations it supports; a method a
collection does not support answers 405 with an ``Allow`` header.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, create_model

from qpi.gateway import filters
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
from qpi.gateway.listing import DEFAULT_PER_PAGE, parse_sort, sort_pattern
from qpi.gateway.models import PathId
from qpi.gateway.openapi import OPTIONAL_AUTH, api
from qpi.gateway.record_models import (
    ApiTokenRecord,
    CollectionRecord,
    DriverRecord,
    JobRecord,
    NotificationRecord,
    QpuRecord,
    RecordPage,
    TelemetryRecord,
    TimeRequestRecord,
    TimeSlotRecord,
    UserRecord,
)

JsonObject = Annotated[dict[str, Any], Body(description="Record fields (JSON object).")]

_RECORD_MODELS: dict[type[Collection], type[CollectionRecord]] = {
    UsersCollection: UserRecord,
    QpusCollection: QpuRecord,
    TimeSlotsCollection: TimeSlotRecord,
    JobsCollection: JobRecord,
    TimeRequestsCollection: TimeRequestRecord,
    NotificationsCollection: NotificationRecord,
    ApiTokensCollection: ApiTokenRecord,
    DriversCollection: DriverRecord,
    TelemetryEventsCollection: TelemetryRecord,
}

# Operations anonymous callers may use (the server decides what they see or may do).
_ANONYMOUS: dict[type[Collection], frozenset[str]] = {
    QpusCollection: frozenset({"list", "view"}),
    UsersCollection: frozenset({"create"}),
}


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


def _supports(coll: Collection, operation: str) -> bool:
    """Whether the collection implements ``operation`` (the base class only refuses)."""
    return getattr(type(coll), operation) is not getattr(Collection, operation)


def _page_model(record: type[CollectionRecord]) -> type[BaseModel]:
    """``<Record>Page``: the list response of one collection."""
    return create_model(f"{record.__name__}Page", __base__=RecordPage[record])  # type: ignore[valid-type]


def _tag(coll: Collection, record: dict[str, Any]) -> dict[str, Any]:
    return {"collectionId": coll.name, "collectionName": coll.name, **record}


def _add_collection(router: APIRouter, coll: Collection) -> None:
    """Register the routes of one collection."""
    model = _RECORD_MODELS[type(coll)]
    page_model = _page_model(model)
    anonymous = _ANONYMOUS.get(type(coll), frozenset())
    base = f"/api/collections/{coll.name}/records"
    tags: list[str | Enum] = [f"collection {coll.name}"]

    def extra(operation: str) -> dict[str, Any] | None:
        return OPTIONAL_AUTH if operation in anonymous else None

    allowed = coll.fields | set(coll.relations)
    sortable = sort_pattern(allowed)

    async def list_records(
        ctx: CtxDep,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, Query(alias="perPage", ge=1, le=1_000_000)] = DEFAULT_PER_PAGE,
        # A default rather than Annotated: the pattern is a local, which a string
        # annotation (postponed evaluation) could not resolve.
        sort: str = Query("", max_length=512, pattern=sortable),
        filter: Annotated[str, Query(max_length=filters.MAX_FILTER_LENGTH)] = "",  # noqa: A002
        expand: Annotated[str, Query(max_length=512)] = "",
        fields: Annotated[str, Query(max_length=512, description="Ignored.")] = "",
        skip_total: Annotated[
            bool,
            Query(
                alias="skipTotal",
                description="Do not count the matches: totalItems and totalPages are -1.",
            ),
        ] = False,
    ) -> Any:
        node = filters.parse(filter, allowed)
        keys = parse_sort(sort, allowed)
        wanted = parse_expand(expand, coll.relations)
        result = await coll.list_page(ctx, node, keys, page, per_page, not skip_total)
        result["items"] = [_tag(coll, r) for r in result["items"]]
        await expand_records(ctx, result["items"], wanted, coll.relations)
        return page_model.model_validate(result)

    async def view_record(
        record_id: PathId, ctx: CtxDep, expand: Annotated[str, Query(max_length=512)] = ""
    ) -> Any:
        wanted = parse_expand(expand, coll.relations)
        record = _tag(coll, await coll.view(ctx, record_id))
        await expand_records(ctx, [record], wanted, coll.relations)
        return model.model_validate(record)

    async def create_record(body: JsonObject, ctx: CtxDep) -> Any:
        return model.model_validate(_tag(coll, await coll.create(ctx, body)))

    async def update_record(record_id: PathId, body: JsonObject, ctx: CtxDep) -> Any:
        return model.model_validate(_tag(coll, await coll.update(ctx, record_id, body)))

    async def delete_record(record_id: PathId, ctx: CtxDep) -> Response:
        await coll.delete(ctx, record_id)
        return Response(status_code=204)

    common: dict[str, Any] = {"tags": tags, "response_model_exclude_unset": True}
    router.add_api_route(
        base,
        list_records,
        methods=["GET"],
        name=f"list_{coll.name}_records",
        summary=f"List {coll.name} records (filter, sort, page, expand)",
        response_model=page_model,
        responses=api(403),
        openapi_extra=extra("list"),
        **common,
    )
    router.add_api_route(
        f"{base}/{{record_id}}",
        view_record,
        methods=["GET"],
        name=f"view_{coll.name}_record",
        summary=f"View one {coll.name} record",
        response_model=model,
        responses=api(403, 404),
        openapi_extra=extra("view"),
        **common,
    )
    if _supports(coll, "create"):
        router.add_api_route(
            base,
            create_record,
            methods=["POST"],
            name=f"create_{coll.name}_record",
            summary=f"Create a {coll.name} record",
            response_model=model,
            responses=api(403, 404, 409, 413, 429),
            openapi_extra=extra("create"),
            **common,
        )
    if _supports(coll, "update"):
        router.add_api_route(
            f"{base}/{{record_id}}",
            update_record,
            methods=["PATCH"],
            name=f"update_{coll.name}_record",
            summary=f"Change a {coll.name} record (only the keys sent)",
            response_model=model,
            responses=api(403, 404, 409, 413),
            **common,
        )
    if _supports(coll, "delete"):
        router.add_api_route(
            f"{base}/{{record_id}}",
            delete_record,
            methods=["DELETE"],
            name=f"delete_{coll.name}_record",
            summary=f"Delete a {coll.name} record",
            status_code=204,
            response_class=Response,
            responses=api(403, 404, 409),
            tags=tags,
        )


def build_router(config: GatewayConfig) -> APIRouter:
    """Create the collection routes for the configured names."""
    router = APIRouter()
    for coll in build_registry(config).values():
        _add_collection(router, coll)
    return router
