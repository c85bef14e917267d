"""QpuService: QPU and driver registry."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.domain.listing import Condition, FieldRef, Value
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import unary
from qpi.server.rpc.list_query import page_of, request_query
from qpi.server.rpc.pages import messages
from qpi.server.services.database import Database
from qpi.server.services.qpu_service import QpuService
from qpi.v1 import qpu_service_pb2, qpu_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class QpuServicer(qpu_service_pb2_grpc.QpuServiceServicer):
    """Thin adapter over QpuService."""

    def __init__(self, db: Database, auth: Authenticator, qpus: QpuService) -> None:
        self._db = db
        self._auth = auth
        self._qpus = qpus

    @unary
    async def ListQpus(
        self, request: qpu_service_pb2.ListQpusRequest, context: Ctx
    ) -> qpu_service_pb2.ListQpusResponse:
        await self._auth.optional_principal(context)  # QPU facts are public
        online = [Condition(FieldRef("status"), "=", Value("online"))]
        query, key = request_query(request, online if request.online_only else [])
        query, finish = page_of(request, query, f"qpus|{key}")
        rows, total = await self._db.run(self._qpus.query_qpus, query)
        total_size, capped, token = finish(len(rows), total)
        return qpu_service_pb2.ListQpusResponse(
            qpus=await messages(rows, lambda row: convert.qpu(*row)),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetQpu(
        self, request: qpu_service_pb2.GetQpuRequest, context: Ctx
    ) -> qpu_service_pb2.GetQpuResponse:
        await self._auth.optional_principal(context)  # QPU facts are public
        row, n = await self._db.run(self._qpus.get, request.id.strip())
        return qpu_service_pb2.GetQpuResponse(qpu=convert.qpu(row, n))

    @unary
    async def CreateQpu(
        self, request: qpu_service_pb2.CreateQpuRequest, context: Ctx
    ) -> qpu_service_pb2.CreateQpuResponse:
        who = await self._auth.principal(context)
        q = request.qpu
        row, driver, token = await self._db.run(
            self._qpus.create,
            who,
            q.name,
            enabled=q.enabled,
            num_qubits=q.num_qubits,
            coupling_map=[(e.source, e.target) for e in q.coupling_map],
            native_gates=list(q.native_gates),
            create_driver=request.create_driver if request.HasField("create_driver") else True,
            driver_kind=request.driver_kind,
        )
        return qpu_service_pb2.CreateQpuResponse(
            qpu=convert.qpu(row),
            driver=convert.driver(driver) if driver else None,
            access_token=token,
            ca_fingerprint=self._qpus.ca_fingerprint,
        )

    @unary
    async def UpdateQpu(
        self, request: qpu_service_pb2.UpdateQpuRequest, context: Ctx
    ) -> qpu_service_pb2.UpdateQpuResponse:
        who = await self._auth.principal(context)
        q = request.qpu
        values: dict[str, object] = {
            "name": q.name,
            "enabled": q.enabled,
            "num_qubits": q.num_qubits,
            "coupling_map": [[e.source, e.target] for e in q.coupling_map],
            "native_gates": list(q.native_gates),
        }
        fields = {p: values[p] for p in request.update_mask.paths if p in values}
        row = await self._db.run(self._qpus.update, who, q.id, fields)
        return qpu_service_pb2.UpdateQpuResponse(qpu=convert.qpu(row))

    @unary
    async def DeleteQpu(
        self, request: qpu_service_pb2.DeleteQpuRequest, context: Ctx
    ) -> qpu_service_pb2.DeleteQpuResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._qpus.delete, who, request.id)
        return qpu_service_pb2.DeleteQpuResponse()

    @unary
    async def CreateDriver(
        self, request: qpu_service_pb2.CreateDriverRequest, context: Ctx
    ) -> qpu_service_pb2.CreateDriverResponse:
        who = await self._auth.principal(context)
        d = request.driver
        row, token = await self._db.run(
            self._qpus.create_driver, who, d.qpu_id, d.name, d.kind, d.language, True
        )
        return qpu_service_pb2.CreateDriverResponse(
            driver=convert.driver(row), access_token=token, ca_fingerprint=self._qpus.ca_fingerprint
        )

    @unary
    async def ListDrivers(
        self, request: qpu_service_pb2.ListDriversRequest, context: Ctx
    ) -> qpu_service_pb2.ListDriversResponse:
        who = await self._auth.principal(context)
        own = [Condition(FieldRef("qpu"), "=", Value(request.qpu_id))] if request.qpu_id else []
        query, key = request_query(request, own)
        query, finish = page_of(request, query, f"drivers|{key}")
        rows, total = await self._db.run(self._qpus.query_drivers, who, query)
        total_size, capped, token = finish(len(rows), total)
        return qpu_service_pb2.ListDriversResponse(
            drivers=await messages(rows, convert.driver),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetDriver(
        self, request: qpu_service_pb2.GetDriverRequest, context: Ctx
    ) -> qpu_service_pb2.GetDriverResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._qpus.get_driver, who, request.id)
        return qpu_service_pb2.GetDriverResponse(driver=convert.driver(row))

    @unary
    async def UpdateDriver(
        self, request: qpu_service_pb2.UpdateDriverRequest, context: Ctx
    ) -> qpu_service_pb2.UpdateDriverResponse:
        who = await self._auth.principal(context)
        d = request.driver
        values: dict[str, object] = {"name": d.name, "enabled": d.enabled}
        fields = {p: values[p] for p in request.update_mask.paths if p in values}
        row = await self._db.run(self._qpus.update_driver, who, d.id, fields)
        return qpu_service_pb2.UpdateDriverResponse(driver=convert.driver(row))

    @unary
    async def DeleteDriver(
        self, request: qpu_service_pb2.DeleteDriverRequest, context: Ctx
    ) -> qpu_service_pb2.DeleteDriverResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._qpus.delete_driver, who, request.id)
        return qpu_service_pb2.DeleteDriverResponse()
