"""The RPC error translator: rich statuses and input guards."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.rpc.errors import nul_field, to_status, unary
from qpi.v1 import job_pb2, job_service_pb2


def test_status_carries_error_info_and_field_violation() -> None:
    status = to_status(
        InvalidArgumentError(
            "INVALID_QASM",
            "Circuit 0 is bad.",
            field="circuits[0].qasm",
            metadata={"circuit_index": 0},
        )
    )
    rich = rpc_status.to_status  # the same helper the server uses
    assert rich is not None
    assert status.code.name == "INVALID_ARGUMENT"
    assert status.details == "Circuit 0 is bad."
    from google.rpc import status_pb2

    decoded = status_pb2.Status.FromString(
        dict(status.trailing_metadata)["grpc-status-details-bin"]
    )
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    assert info.reason == "INVALID_QASM"
    assert info.domain == "qpi.v1"
    assert info.metadata["circuit_index"] == "0"
    bad = error_details_pb2.BadRequest()
    assert decoded.details[1].Unpack(bad)
    assert bad.field_violations[0].field == "circuits[0].qasm"


def test_nul_characters_are_found_in_nested_and_repeated_fields() -> None:
    clean = job_service_pb2.CreateJobRequest(
        payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm="ok")])
    )
    assert nul_field(clean) == ""
    dirty = job_service_pb2.CreateJobRequest(
        payload=job_pb2.JobPayload(
            circuits=[job_pb2.Circuit(qasm="ok"), job_pb2.Circuit(qasm="a\x00b")]
        )
    )
    assert nul_field(dirty) == "payload.circuits[1].qasm"
    assert nul_field(job_service_pb2.CreateJobRequest(qpu="q\x00")) == "qpu"


def test_outage_status_carries_retry_info_and_gRPC_pushback() -> None:
    from google.rpc import status_pb2

    from qpi.server.domain.errors import database_unavailable
    from qpi.server.rpc.errors import RETRY_PUSHBACK_KEY

    status = to_status(database_unavailable())
    assert status.code.name == "UNAVAILABLE"
    trailers = dict(status.trailing_metadata)
    assert trailers[RETRY_PUSHBACK_KEY] == "2000"
    decoded = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert decoded.details[0].Unpack(info)
    assert info.reason == "DATABASE_UNAVAILABLE"
    assert decoded.details[1].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 2000


class _Aborted(Exception):
    pass


class _Context:
    """Records the status a handler aborts with."""

    def __init__(self) -> None:
        self.status: object = None

    async def abort_with_status(self, status: object) -> None:
        self.status = status
        raise _Aborted


@pytest.mark.parametrize(
    ("request_", "refused"),
    [
        # a zero byte that is no NUL character (an empty message's length): the walk
        # runs and finds nothing
        (
            job_service_pb2.CreateJobRequest(
                payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit()], shots=256)
            ),
            "",
        ),
        (job_service_pb2.CreateJobRequest(qpu="bench"), ""),
        (job_service_pb2.CreateJobRequest(qpu="q\x00"), "qpu"),
        (
            job_service_pb2.CreateJobRequest(
                payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm="a\x00b")], shots=256)
            ),
            "payload.circuits[0].qasm",
        ),
    ],
)
async def test_handlers_refuse_nul_characters_before_running(
    request_: job_service_pb2.CreateJobRequest, refused: str
) -> None:
    ran: list[str] = []

    class _Servicer:
        @unary
        async def CreateJob(self, request: Any, context: Any) -> str:  # noqa: N802
            ran.append(request.qpu)
            return "done"

    context = _Context()
    if not refused:
        assert await _Servicer().CreateJob(request_, context) == "done"
        assert ran == [request_.qpu]
        return
    with pytest.raises(_Aborted):
        await _Servicer().CreateJob(request_, context)
    assert ran == []
    assert context.status.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert refused in context.status.details  # type: ignore[attr-defined]
