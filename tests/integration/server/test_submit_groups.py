"""Concurrent submits stored in shared transactions (group commit) keep each submit's own
outcome: a refused submit fails alone, a reused request id names one job, nothing is lost
or doubled."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import grpc

from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.support.harness import ServerHarness

TINY = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'
THREADS = 24


def test_concurrent_submits_each_keep_their_own_outcome(qpi_server: ServerHarness) -> None:
    qpi_server.register_qpu("q1")  # no driver: every stored job stays pending
    _, rich = qpi_server.create_user("rich@example.com", qpu_seconds=1000)
    _, broke = qpi_server.create_user("broke@example.com", qpu_seconds=0)
    stub = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=TINY)], shots=8)
    start = Barrier(THREADS)

    def submit(index: int) -> tuple[str, str]:
        token, key = rich, ""
        if index % 4 == 1:
            token = broke
        elif index % 4 == 2:
            key = "same-key"
        request = job_service_pb2.CreateJobRequest(payload=payload, qpu="q1", request_id=key)
        start.wait()  # every submit arrives at once, so they queue for the database
        try:
            job = stub.CreateJob(request, metadata=qpi_server.auth(token)).job
        except grpc.RpcError as exc:
            return "refused", str(exc.code())
        return ("keyed" if key else "new"), str(job.id)

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(submit, range(THREADS)))

    refused = [detail for kind, detail in outcomes if kind == "refused"]
    new = [detail for kind, detail in outcomes if kind == "new"]
    keyed = {detail for kind, detail in outcomes if kind == "keyed"}
    assert refused == [str(grpc.StatusCode.RESOURCE_EXHAUSTED)] * (THREADS // 4)
    assert len(new) == len(set(new)) == THREADS // 2
    assert len(keyed) == 1  # six submits of one request id: one job
    listed = stub.ListJobs(
        job_service_pb2.ListJobsRequest(page_size=100), metadata=qpi_server.auth(rich)
    )
    assert sorted(j.id for j in listed.jobs) == sorted([*new, *keyed])
    assert {j.state for j in listed.jobs} == {job_pb2.Job.STATE_PENDING}
    nothing = stub.ListJobs(
        job_service_pb2.ListJobsRequest(page_size=100), metadata=qpi_server.auth(broke)
    )
    assert list(nothing.jobs) == []
