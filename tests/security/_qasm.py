"""Helpers shared by the QASM attack tests: submit over REST and over gRPC, read reasons."""

from __future__ import annotations

import grpc
import httpx
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.support.harness import ServerHarness


def rest_submit(
    http: httpx.Client, headers: dict[str, str], sources: list[str], qpu: str = ""
) -> httpx.Response:
    """POST /api/jobs with these circuits."""
    body: dict[str, object] = {"circuits": [{"circuit": s} for s in sources], "shots": 10}
    if qpu:
        body["qpu_target"] = qpu
    return http.post("/api/jobs", json=body, headers=headers)


def grpc_submit(
    server: ServerHarness, token: str, sources: list[str], qpu: str = "", timeout: float = 120
) -> job_pb2.Job:
    """CreateJob with these circuits; raises grpc.RpcError on refusal."""
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=s) for s in sources], shots=10)
    return stub.CreateJob(
        job_service_pb2.CreateJobRequest(payload=payload, qpu=qpu),
        metadata=server.auth(token),
        timeout=timeout,
    ).job


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None, "no rich status attached"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in status")
