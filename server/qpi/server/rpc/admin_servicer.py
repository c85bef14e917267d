"""AdminService: version, public server facts, telemetry."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import grpc

from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import unary
from qpi.server.rpc.list_query import page_end, telemetry_query
from qpi.server.rpc.pages import messages
from qpi.server.services.database import Database
from qpi.server.services.paging import page_window
from qpi.server.services.telemetry_service import TelemetryService
from qpi.v1 import admin_service_pb2 as pb
from qpi.v1 import admin_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


@dataclass
class ServerFacts:
    """Public facts about this server (the gRPC port is known only after binding)."""

    version: str
    ca_fingerprint: str
    ca_pem: str
    grpc_port: int
    grpc_tls: bool
    password_auth: bool
    signup: bool
    oauth2_providers: str


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    """Server information and telemetry."""

    def __init__(
        self, db: Database, auth: Authenticator, facts: ServerFacts, telemetry: TelemetryService
    ) -> None:
        self._db = db
        self._auth = auth
        self._facts = facts
        self._telemetry = telemetry

    @unary
    async def GetVersion(
        self, request: pb.GetVersionRequest, context: Ctx
    ) -> pb.GetVersionResponse:
        who = await self._auth.principal(context)
        who.require_admin()
        return pb.GetVersionResponse(version=self._facts.version)

    @unary
    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: Ctx
    ) -> pb.GetServerInfoResponse:
        f = self._facts
        who = await self._auth.optional_principal(context)
        providers = [
            str(p.get("name", ""))
            for p in json.loads(f.oauth2_providers or "[]")
            if isinstance(p, dict)
        ]
        return pb.GetServerInfoResponse(
            # The version helps attackers pick exploits; the spec keeps it admin-only.
            version=f.version if who is not None and who.is_superuser else "",
            ca_fingerprint=f.ca_fingerprint,
            ca_certificate_pem=f.ca_pem,
            password_auth_enabled=f.password_auth,
            signup_enabled=f.signup,
            grpc_port=f.grpc_port,
            grpc_tls=f.grpc_tls,
            oauth2_providers=providers,
        )

    @unary
    async def ListTelemetryEvents(
        self, request: pb.ListTelemetryEventsRequest, context: Ctx
    ) -> pb.ListTelemetryEventsResponse:
        who = await self._auth.principal(context)
        query, key = telemetry_query(request)
        offset, limit = page_window(request.page_size or 200, request.page_token, request.skip, key)
        query = replace(query, offset=offset, limit=limit)
        rows, total = await self._db.run(self._telemetry.query, who, query)
        total_size, capped, token = page_end(offset, limit, len(rows), total, key)
        return pb.ListTelemetryEventsResponse(
            events=await messages(rows, convert.telemetry),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetTelemetryEvent(
        self, request: pb.GetTelemetryEventRequest, context: Ctx
    ) -> pb.GetTelemetryEventResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._telemetry.get, who, request.id)
        return pb.GetTelemetryEventResponse(event=convert.telemetry(row))
