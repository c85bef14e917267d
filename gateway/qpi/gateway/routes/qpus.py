"""``/api/qpus``: the QPU registry as clients and the Qiskit provider read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from qpi.gateway import records
from qpi.gateway.context import CtxDep
from qpi.gateway.listing import parse_sort, sort_pattern
from qpi.gateway.models import PathId, QpuOut
from qpi.gateway.openapi import OPTIONAL_AUTH, api
from qpi.gateway.paging import array_encoder, json_array, read_pages
from qpi.gateway.pushdown import sort_messages
from qpi.v1 import qpu_service_pb2

router = APIRouter(prefix="/api/qpus", tags=["qpus"])

QPU_FIELDS = frozenset({"id", "name", "status", "num_qubits", "enabled", "created", "updated"})
QPU_SORT = sort_pattern(QPU_FIELDS)


_ENCODE_QPUS = array_encoder(QpuOut, records.qpu_object)


@router.get("", responses=api(), response_model=list[QpuOut], openapi_extra=OPTIONAL_AUTH)
async def list_qpus(
    ctx: CtxDep,
    online: Annotated[bool, Query(description="Only online QPUs.")] = False,
    sort: Annotated[str, Query(max_length=512, pattern=QPU_SORT)] = "",
    skip: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=0, le=2**31 - 1, description="0 means all.")] = 0,
) -> Response:
    """All QPUs (``?online=1``: only online ones) as a bare array, ordered by name (or
    ``sort``), sorted and paged in SQL."""
    request = qpu_service_pb2.ListQpusRequest(
        online_only=online, sort=sort_messages(parse_sort(sort, QPU_FIELDS))
    )
    pages = read_pages(ctx, ctx.stubs.qpus.ListQpus, request, "qpus", skip, limit)
    return await json_array(pages, _ENCODE_QPUS)


@router.get("/{name_or_id}", responses=api(404), openapi_extra=OPTIONAL_AUTH)
async def get_qpu(name_or_id: PathId, ctx: CtxDep) -> QpuOut:
    """One QPU, looked up by name or by id."""
    resp: qpu_service_pb2.GetQpuResponse = await ctx.call(
        ctx.stubs.qpus.GetQpu, qpu_service_pb2.GetQpuRequest(id=name_or_id)
    )
    return QpuOut.model_validate(records.qpu_object(resp.qpu))
