"""``GET /api/realtime/events``: Server-Sent Events relaying ``EventService.Subscribe``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc  # type: ignore[import-untyped, unused-ignore]
from fastapi import APIRouter, Depends, Query, Request
from sse_starlette.sse import EventSourceResponse

from qpi.gateway import auth, errors, records, rpc
from qpi.gateway.context import get_ctx
from qpi.gateway.openapi import api
from qpi.v1 import account_service_pb2, event_service_pb2

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/realtime", tags=["realtime"])

TOPICS = frozenset({"jobs", "qpus", "notifications"})


def event_for(message: event_service_pb2.SubscribeResponse) -> tuple[str, dict[str, Any]] | None:
    """Convert one change into an SSE ``(event name, data)`` pair (None if unknown)."""
    kind = message.WhichOneof("event")
    if kind == "job":
        return "job", records.job_object(message.job)
    if kind == "qpu":
        return "qpu", records.qpu_object(message.qpu)
    if kind == "notification":
        return "notification", records.notification_record(message.notification)
    if kind == "deleted_notification_id":
        return "notification", {"id": message.deleted_notification_id, "deleted": True}
    return None


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: `job`, `qpu` and `notification`.",
        },
        **api(),
    },
    dependencies=[Depends(get_ctx)],
)
async def events(
    request: Request,
    topics: Annotated[str, Query(max_length=64, description="Comma list; empty = all.")] = "",
    token: Annotated[str, Query(max_length=4096, description="Alternative to headers.")] = "",
) -> EventSourceResponse:
    """Stream ``job``, ``qpu`` and ``notification`` events the caller may see."""
    wanted = [t.strip() for t in topics.split(",") if t.strip()]
    if any(t not in TOPICS for t in wanted):
        raise errors.ApiError(
            400,
            "Unknown topic.",
            {
                "topics": errors.field_error(
                    "validation_invalid_value", f"Allowed topics: {', '.join(sorted(TOPICS))}."
                )
            },
        )
    clients: rpc.GrpcClients = request.app.state.grpc_clients
    metadata = rpc.bearer_metadata(auth.request_token(request, allow_query=True))
    # Check the credentials first so that a bad token gives a proper 401 envelope instead
    # of a stream that closes at once (the server checks again on Subscribe).
    await rpc.call(
        clients.stubs.accounts.GetCurrentUser,
        account_service_pb2.GetCurrentUserRequest(),
        metadata,
    )
    call: Any = clients.stubs.events.Subscribe(
        event_service_pb2.SubscribeRequest(topics=wanted), metadata=metadata
    )

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            while (message := await call.read()) is not grpc.aio.EOF:
                converted = event_for(message)
                if converted is not None:
                    name, data = converted
                    yield {"event": name, "data": json.dumps(data)}
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                logger.info("[gateway.realtime] stream ended code=%s", exc.code().name)
        finally:
            call.cancel()

    ping = request.app.state.gateway_config.sse_ping_seconds
    return EventSourceResponse(stream(), ping=ping)
