"""11.6: job history survives QPU deletion; the QPU's drivers are disconnected.

Before the fix, deleting a QPU cascaded to its jobs (owners' results vanished) and left
its connected drivers attached. Now jobs stay readable by their owners under the QPU's
name (their QPU id becomes empty), unfinished ones are cancelled with a clear reason, and every
driver stream of the QPU ends with NOT_FOUND / QPU_DELETED.

Runs on SQLite by default and on PostgreSQL with QPI_TEST_DATABASE=postgres.
"""

from __future__ import annotations

import grpc
import httpx
import pytest

from qpi.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)
from tests.security._qasm import error_info
from tests.support.harness import ServerHarness
from tests.support.raw_stream import RawStream


def _jobs(server: ServerHarness) -> job_service_pb2_grpc.JobServiceStub:
    return job_service_pb2_grpc.JobServiceStub(server.channel())


def _delete_qpu(server: ServerHarness, key: str) -> None:
    stub = qpu_service_pb2_grpc.QpuServiceStub(server.channel())
    stub.DeleteQpu(
        qpu_service_pb2.DeleteQpuRequest(id=key), metadata=server.auth(server.admin_token)
    )


def test_jobs_and_results_outlive_their_qpu(qpi_server: ServerHarness, bell_qasm: str) -> None:
    server = qpi_server
    _, alice = server.create_user("alice@example.com")
    _, bob = server.create_user("bob@example.com")
    qpu_id = server.create_qpu("doomed", 4)
    done = server.wait(alice, server.submit(alice, bell_qasm, qpu="doomed").id)
    assert done.state == job_pb2.Job.STATE_COMPLETED
    parked_id, _ = server.register_qpu("parked")  # no driver: its job stays pending
    waiting = server.submit(alice, bell_qasm, qpu="parked")

    _delete_qpu(server, "doomed")
    _delete_qpu(server, parked_id)

    jobs = _jobs(server)
    kept = jobs.GetJob(job_service_pb2.GetJobRequest(id=done.id), metadata=server.auth(alice)).job
    assert kept.state == job_pb2.Job.STATE_COMPLETED
    assert kept.result_json == done.result_json
    assert kept.result_json
    assert kept.qpu_name == "doomed"
    assert kept.qpu_id == ""
    assert kept.charged_seconds == done.charged_seconds
    cancelled = server.wait(alice, waiting.id)
    assert cancelled.state == job_pb2.Job.STATE_CANCELLED
    assert "'parked' was deleted" in cancelled.error
    assert cancelled.charged_seconds == 0
    listed = jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=server.auth(alice)).jobs
    assert {j.id for j in listed} == {done.id, waiting.id}
    # Owners only, as before.
    with pytest.raises(grpc.RpcError) as caught:
        jobs.GetJob(job_service_pb2.GetJobRequest(id=done.id), metadata=server.auth(bob))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Over REST too, with the results.
    record = httpx.get(
        f"{server.http_url}/api/jobs/{done.id}", headers={"X-API-Token": alice}, timeout=30
    )
    assert record.status_code == 200, record.text
    assert record.json()["status"] == "completed"
    assert record.json()["results"]["circuit_results"][0]["counts"]
    collection = httpx.get(
        f"{server.http_url}/api/collections/quantum_jobs/records",
        params={"expand": "qpu_target"},
        headers={"X-API-Token": alice},
        timeout=30,
    )
    assert collection.status_code == 200, collection.text
    by_id = {item["id"]: item for item in collection.json()["items"]}
    assert by_id[done.id]["qpu_name"] == "doomed"
    # The QPU itself is gone, and new jobs cannot name it.
    with pytest.raises(grpc.RpcError) as caught:
        server.submit(alice, bell_qasm, qpu=qpu_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_deleting_a_qpu_disconnects_its_drivers(qpi_server: ServerHarness) -> None:
    server = qpi_server
    _, token = server.register_qpu("doomed")
    stream = RawStream(server, token, [])
    try:
        stream.next("welcome")
        _delete_qpu(server, "doomed")
        with pytest.raises(grpc.RpcError) as caught:
            for _ in stream.incoming:  # heartbeat acks and the like, then the end
                pass
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(caught.value).reason == "QPU_DELETED"
        assert "'doomed' was deleted" in (caught.value.details() or "")
    finally:
        stream.close()
    # Its registration went with it: the token no longer opens a stream.
    again = RawStream(server, token, [])
    with pytest.raises(grpc.RpcError) as caught:
        again.next("welcome")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    again.close()
