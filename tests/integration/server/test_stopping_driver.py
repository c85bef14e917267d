"""What a driver stream learns and announces (issue 11 items 4 and 10)."""

from __future__ import annotations

import time

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.support.harness import ServerHarness
from tests.support.raw_stream import RawStream


def _job(server: ServerHarness, token: str, job_id: str) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    request = job_service_pb2.GetJobRequest(id=job_id)
    return stub.GetJob(request, metadata=server.auth(token)).job


def test_welcome_announces_the_result_limits(qpi_server: ServerHarness) -> None:
    _, token = qpi_server.register_qpu("q1")
    stream = RawStream(qpi_server, token, [])
    welcome = stream.next("welcome").welcome
    stream.close()
    assert welcome.max_result_bytes == qpi_server.settings.max_result_bytes
    # The gRPC receive limit leaves room for the largest result and its framing.
    assert welcome.max_message_bytes > welcome.max_result_bytes


def test_job_handed_back_by_a_stopping_driver_is_not_leased_to_it_again(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, token = qpi_server.register_qpu("q1")
    _, user = qpi_server.create_user("alice@example.com")
    stream = RawStream(qpi_server, token, [])
    stream.next("welcome")
    job = qpi_server.submit(user, bell_qasm, qpu="q1")
    assignment = stream.next("job_assignment").job_assignment
    lease = pb.HeldJob(job_id=assignment.job_id, attempt=assignment.attempt)
    stream.out.put(pb.ConnectRequest(job_accepted=pb.JobAccepted(**_fields(lease))))
    stream.out.put(
        pb.ConnectRequest(heartbeat=pb.DriverHeartbeat(running_jobs=[lease], stopping=True))
    )
    release = pb.JobRelease(reason="driver shutting down", **_fields(lease))
    stream.out.put(pb.ConnectRequest(job_release=release))
    deadline = time.monotonic() + 10
    while _job(qpi_server, user, job.id).state != job_pb2.Job.STATE_PENDING:
        assert time.monotonic() < deadline, "the release was not processed"
        time.sleep(0.05)
    time.sleep(1.0)  # the dispatcher had its chance to lease it again
    after = _job(qpi_server, user, job.id)
    stream.close()
    assert after.state == job_pb2.Job.STATE_PENDING
    assert after.attempt == assignment.attempt
    # Another driver gets it, with the next attempt.
    other = RawStream(qpi_server, token, [])
    again = other.next("job_assignment").job_assignment
    other.close()
    assert (again.job_id, again.attempt) == (job.id, assignment.attempt + 1)


def _fields(lease: pb.HeldJob) -> dict[str, object]:
    return {"job_id": lease.job_id, "attempt": lease.attempt}
