"""BatchCreateJobs through the SDK (``submit_jobs``): all or nothing, idempotent per job,
in order, validated like single submits. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from qpi.sdk import QPIClient, QPIError
from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def _rotation(angle: float) -> str:
    return BELL.replace("h q[0];", f"rx({angle}) q[0];")


@pytest.fixture
def parked(qpi_server: Any) -> tuple[str, str]:
    """A QPU without a driver (jobs stay pending) and its name."""
    name = f"parked-{uuid.uuid4().hex[:6]}"
    qpu_id, _ = qpi_server.register_qpu(name, 2)
    return qpu_id, name


def _count(client: QPIClient) -> int:
    return sum(1 for _ in client.list_jobs())


def test_a_batch_is_submitted_in_order_and_retries_return_the_same_jobs(
    user: Any, parked: tuple[str, str], qpi_server: Any
) -> None:
    qpu_id, name = parked
    circuits = [_rotation(0.01 * i) for i in range(40)]
    keys = [f"sweep-{i}" for i in range(40)]
    jobs = user.client.submit_jobs(circuits, shots=10, qpu_target=name, request_ids=keys)
    assert [j.state for j in jobs] == ["pending"] * 40
    assert {j.qpu_id for j in jobs} == {qpu_id}
    assert len({j.id for j in jobs}) == 40
    # The queue (and the listing, oldest first) keeps the request order.
    listed = [j.id for j in user.client.list_jobs(oldest_first=True)]
    assert listed == [j.id for j in jobs]
    assert user.client.get_job(jobs[7].id).id == jobs[7].id
    # A retried batch, and one that adds jobs to old keys, create no duplicates.
    again = user.client.submit_jobs(circuits, shots=10, qpu_target=name, request_ids=keys)
    assert [j.id for j in again] == [j.id for j in jobs]
    mixed = user.client.submit_jobs(
        [BELL, circuits[3], BELL],
        shots=10,
        qpu_target=name,
        request_ids=["new-0", keys[3], "new-1"],
    )
    assert mixed[1].id == jobs[3].id
    assert len({mixed[0].id, mixed[2].id} | {j.id for j in jobs}) == 42
    assert _count(user.client) == 42


def test_one_bad_job_refuses_the_whole_batch(
    user: Any, parked: tuple[str, str], qpi_server: Any
) -> None:
    _, name = parked
    bad_qasm = [BELL, BELL, BELL, "OPENQASM 2.0;\nqreg q[2];\nfoo q[0];\n", BELL]
    with pytest.raises(QPIError) as caught:
        user.client.submit_jobs(bad_qasm, qpu_target=name)
    assert caught.value.reason == "INVALID_QASM"
    assert caught.value.metadata["index"] == "3"
    assert "Job 3 of the batch" in caught.value.message
    with pytest.raises(QPIError) as caught:
        user.client.submit_jobs([BELL] * 3, qpu_target="no-such-qpu")
    assert caught.value.reason == "QPU_NOT_FOUND"
    assert caught.value.metadata["index"] == "0"
    with pytest.raises(QPIError) as caught:
        user.client.submit_jobs([BELL, BELL], qpu_target=name, request_ids=["k", "k"])
    assert caught.value.reason == "INVALID_FIELD"
    assert caught.value.metadata["index"] == "1"
    with pytest.raises(QPIError) as caught:
        user.client.submit_jobs([BELL] * 1001, qpu_target=name)
    assert caught.value.reason == "BATCH_TOO_LARGE"
    assert _count(user.client) == 0


def test_targets_are_per_job_over_grpc(qpi_server: Any, user: Any, parked: tuple[str, str]) -> None:
    qpu_id, name = parked
    other_id, _ = qpi_server.register_qpu(f"other-{uuid.uuid4().hex[:6]}", 4)
    stub = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=BELL)], shots=5)
    request = job_service_pb2.BatchCreateJobsRequest(
        requests=[
            job_service_pb2.CreateJobRequest(payload=payload, qpu=name),
            job_service_pb2.CreateJobRequest(payload=payload, qpu=other_id),
            job_service_pb2.CreateJobRequest(payload=payload, qpu=name),
        ]
    )
    resp = stub.BatchCreateJobs(request, metadata=qpi_server.auth(user.token))
    assert [j.qpu_id for j in resp.jobs] == [qpu_id, other_id, qpu_id]
    assert all(j.user_id == user.user_id for j in resp.jobs)
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchCreateJobs(
            job_service_pb2.BatchCreateJobsRequest(), metadata=qpi_server.auth(user.token)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_batch_needs_the_balance_and_queue_room_for_all_its_jobs(server_factory: Any) -> None:
    server = server_factory(max_pending_per_user=5)
    qpu_id, _ = server.register_qpu("parked", 2)
    _, token = server.create_user("rich@example.org", "correct horse battery", 100.0)
    _, broke = server.create_user("broke@example.org", "correct horse battery", 0.0)
    with QPIClient(server.grpc_target, api_token=token) as client:
        with pytest.raises(QPIError) as caught:
            client.submit_jobs([BELL] * 6, qpu_target=qpu_id)
        assert caught.value.reason == "TOO_MANY_PENDING_JOBS"
        assert _count(client) == 0
        assert len(client.submit_jobs([BELL] * 5, qpu_target=qpu_id)) == 5
    with QPIClient(server.grpc_target, api_token=broke) as client:
        with pytest.raises(QPIError) as caught:
            client.submit_jobs([BELL] * 2, qpu_target=qpu_id)
        assert caught.value.reason == "INSUFFICIENT_QPU_SECONDS"
        assert _count(client) == 0


def test_batch_jobs_run_to_completion(user: Any, qpu_id: str) -> None:
    jobs = user.client.submit_jobs([BELL] * 5, shots=50, qpu_target=qpu_id)
    for job in jobs:
        done = user.client.wait(job.id, timeout=60)
        assert done.state == "completed"
        assert sum((done.counts or {}).values()) == 50
