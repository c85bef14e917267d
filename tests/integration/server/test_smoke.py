"""Submit → dispatch → result → stream back, end to end with the minimal stream driver."""

from __future__ import annotations

import json

from qpi.v1 import job_pb2
from tests.support.harness import ServerHarness


def test_job_completes_with_counts_and_charges_owner(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    qpu_id = qpi_server.create_qpu("sim1")
    _, token = qpi_server.create_user("alice@example.com")
    job = qpi_server.submit(token, bell_qasm, qpu="sim1", shots=200)
    # Queued, or already leased to the idle driver by the submit itself.
    assert job.state in (job_pb2.Job.STATE_PENDING, job_pb2.Job.STATE_RUNNING)
    assert job.qpu_id == qpu_id
    done = qpi_server.wait(token, job.id)
    assert done.state == job_pb2.Job.STATE_COMPLETED, done.error
    result = json.loads(done.result_json)
    counts = result["circuit_results"][0]["counts"]
    assert set(counts) == {"00", "01", "10", "11"}
    assert counts["00"] + counts["11"] == 200
    assert done.attempt == 1
    assert done.charged_seconds > 0
