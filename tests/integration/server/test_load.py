"""1,000 jobs from 10 concurrent clients over 2 drivers complete exactly once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.support.harness import ServerHarness

TINY = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'
CLIENTS = 10
PER_CLIENT = 100


def test_thousand_jobs_ten_clients_two_drivers_exactly_once(qpi_server: ServerHarness) -> None:
    qpi_server.create_qpu("q1")
    # A second driver for the same QPU.
    from tests.support.mini_driver import MiniDriver

    qpu_stub_token = qpi_server.register_qpu("q2")[1]
    second = MiniDriver(qpi_server.grpc_target, qpu_stub_token, name="q2-mini").start()
    assert second.welcomed.wait(15)
    qpi_server.drivers.append(second)
    tokens = [
        qpi_server.create_user(f"u{i}@example.com", qpu_seconds=10_000)[1] for i in range(CLIENTS)
    ]

    def client(token: str) -> list[str]:
        stub = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=TINY)], shots=8)
        return [
            stub.CreateJob(
                job_service_pb2.CreateJobRequest(payload=payload), metadata=qpi_server.auth(token)
            ).job.id
            for _ in range(PER_CLIENT)
        ]

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = [job_id for batch in pool.map(client, tokens) for job_id in batch]
    assert len(set(ids)) == CLIENTS * PER_CLIENT

    admin = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        done = admin.ListJobs(
            job_service_pb2.ListJobsRequest(
                all_users=True, states=[job_pb2.Job.STATE_COMPLETED], page_size=1
            ),
            metadata=qpi_server.auth(qpi_server.admin_token),
        )
        if done.total_size == len(ids):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    assert done.total_size == len(ids), f"only {done.total_size} of {len(ids)} completed"

    executed = Counter(job_id for d in qpi_server.drivers for job_id, _ in d.executed)
    assert set(executed) == set(ids), "some jobs never executed"
    assert max(executed.values()) == 1, "a job executed twice"
    # Routing spread untargeted jobs over both QPUs.
    assert all(len(d.executed) > 100 for d in qpi_server.drivers)
    print(f"1000 jobs end to end in {elapsed:.1f}s ({len(ids) / elapsed:.0f} jobs/s)")
