"""FastAPI application factory: ``create_app(GatewayConfig) -> FastAPI``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from qpi.gateway import handlers, rpc
from qpi.gateway.config import GatewayConfig
from qpi.gateway.limits import BodyLimitMiddleware
from qpi.gateway.openapi import finish_schema
from qpi.gateway.routes import (
    admin_users,
    auth_records,
    collections,
    dashboard,
    jobs,
    nng_connect,
    notifications,
    oauth2,
    ops,
    pub,
    qpus,
    realtime,
    tokens,
)

logger = logging.getLogger(__name__)

_DESCRIPTION = (
    "REST and live-update gateway of QPI. Every route calls the gRPC services; errors use "
    'the envelope `{"data": {...}, "message": "...", "status": <code>}` (`ErrorOut`).'
)


def _operation_id(route: APIRoute) -> str:
    """Operation ids are the route names (unique), so generated clients get stable names."""
    return route.name


def _install_openapi(app: FastAPI) -> None:
    """Serve the document with FastAPI's unused 422 responses removed (built once)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = finish_schema(schema)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def create_app(config: GatewayConfig) -> FastAPI:
    """Build the gateway application.

    One ``grpc.aio`` channel to ``config.grpc_target`` is opened in the lifespan (or on first
    use when the app is mounted where its lifespan does not run) and closed at shutdown.

    Args:
        config: Gateway configuration.

    Returns:
        The FastAPI app, with OpenAPI at ``/openapi.json`` and docs at ``/docs``.
    """
    clients = rpc.GrpcClients(config.grpc_target, config.local_calls)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clients.open()
        try:
            yield
        finally:
            await clients.close()

    app = FastAPI(
        title="QPI gateway",
        version="1.0.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=_operation_id,
    )
    app.state.grpc_clients = clients
    app.state.gateway_config = config
    handlers.install(app)
    for module in (
        pub,
        ops,
        nng_connect,
        jobs,
        qpus,
        tokens,
        admin_users,
        notifications,
        oauth2,
    ):
        app.include_router(module.router)
    app.include_router(auth_records.build_router(config))
    app.include_router(collections.build_router(config))
    app.include_router(realtime.router)
    app.include_router(dashboard.build_router(config))
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    _install_openapi(app)
    return app
