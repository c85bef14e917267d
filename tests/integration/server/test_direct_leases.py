"""Jobs stored already leased to an idle driver (no dispatch round), and only then.

A submission to a QPU whose driver has a free slot and whose queue is empty is stored
running on that driver in the submit's own transaction; the CreateJob answer already says
so. Whenever the next dispatch round could have decided otherwise (a job queued ahead, a
booking, an owner who cannot pay), the job is stored pending and the queue decides.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

from qpi.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    booking_pb2,
    booking_service_pb2,
    booking_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from qpi.v1 import driver_service_pb2 as pb
from tests.support.harness import ServerHarness
from tests.support.processes import wait_until
from tests.support.raw_stream import RawStream

RESULT = '{"results": [], "success": true}'
RUNNING, PENDING = job_pb2.Job.STATE_RUNNING, job_pb2.Job.STATE_PENDING


def _get(server: ServerHarness, token: str, job_id: str) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    return stub.GetJob(job_service_pb2.GetJobRequest(id=job_id), metadata=server.auth(token)).job


def _balance(server: ServerHarness, token: str) -> float:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    me = stub.GetCurrentUser(
        account_service_pb2.GetCurrentUserRequest(), metadata=server.auth(token)
    )
    return float(me.user.qpu_seconds)


def _assigned(stream: RawStream) -> tuple[str, int]:
    a = stream.next("job_assignment").job_assignment
    stream.send(pb.ConnectRequest(job_accepted=pb.JobAccepted(job_id=a.job_id, attempt=a.attempt)))
    return a.job_id, a.attempt


def _finish(stream: RawStream, job_id: str, attempt: int) -> None:
    """Reports a result and waits for its acknowledgement (the driver's slot is free)."""
    stream.send(
        pb.ConnectRequest(
            job_result=pb.JobResult(
                job_id=job_id, attempt=attempt, result_json=RESULT, execution_seconds=0.5
            )
        )
    )
    ack = stream.next("result_ack").result_ack
    assert (ack.job_id, ack.accepted) == (job_id, True)


def _idle_driver(server: ServerHarness, qpu: str, token: str, qasm: str) -> RawStream:
    """A driver of `qpu` that ran one job through the queue, so the QPU's dispatcher has
    seen its queue empty and knows no booking is near; on PostgreSQL, once the server
    knows it is the only replica (other replicas' jobs could be queued unseen)."""
    relay = server.server.relay
    wait_until(lambda: relay is None or not relay.sending, 30, "the replica to be alone")
    _, driver_token = server.register_qpu(qpu)
    stream = RawStream(server, driver_token, [], capacity=1)
    stream.next("welcome")
    first = server.submit(token, qasm, qpu=qpu)
    assert _assigned(stream) == (first.id, first.attempt + 1)
    _finish(stream, first.id, first.attempt + 1)
    return stream


def test_a_job_for_an_idle_driver_is_stored_running_and_reaches_it(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=100.0)
    stream = _idle_driver(qpi_server, "q1", token, bell_qasm)
    try:
        before = _balance(qpi_server, token)
        job = qpi_server.submit(token, bell_qasm, qpu="q1")
        # The answer to the submit already holds the lease: no dispatch round came first.
        assert (job.state, job.attempt) == (RUNNING, 1)
        assert _assigned(stream) == (job.id, 1)
        _finish(stream, job.id, 1)
        done = _get(qpi_server, token, job.id)
        assert done.state == job_pb2.Job.STATE_COMPLETED
        assert _balance(qpi_server, token) < before  # charged like any other job
    finally:
        stream.close()


def test_jobs_queued_behind_a_busy_driver_keep_their_order(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=100.0)
    stream = _idle_driver(qpi_server, "q1", token, bell_qasm)
    try:
        running = qpi_server.submit(token, bell_qasm, qpu="q1")
        assert running.state == RUNNING
        assert _assigned(stream) == (running.id, 1)
        # The driver is full: the next jobs queue, and run in the order they came.
        queued = [qpi_server.submit(token, bell_qasm, qpu="q1") for _ in range(3)]
        assert [j.state for j in queued] == [PENDING] * 3
        _finish(stream, running.id, 1)
        for job in queued:
            assert _assigned(stream) == (job.id, 1)
            _finish(stream, job.id, 1)
        # With the queue empty again, the next job goes straight to the driver.
        again = qpi_server.submit(token, bell_qasm, qpu="q1")
        assert again.state == RUNNING
        assert _assigned(stream) == (again.id, 1)
        _finish(stream, again.id, 1)
    finally:
        stream.close()


def test_a_job_queued_while_another_owner_cannot_pay_is_not_overtaken_by_a_direct_lease(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=100.0)
    _, broke = qpi_server.create_user("bob@example.com", qpu_seconds=1e-6)
    stream = _idle_driver(qpi_server, "q1", token, bell_qasm)
    try:
        # Bob's balance does not cover his estimate: stored pending, not leased.
        waiting = qpi_server.submit(broke, bell_qasm, qpu="q1")
        assert waiting.state == PENDING
        # Something is pending on the QPU, so Alice's job goes through the queue, whose
        # policy skips Bob (he cannot pay) and runs hers.
        job = qpi_server.submit(token, bell_qasm, qpu="q1")
        assert job.state == PENDING
        assert _assigned(stream) == (job.id, 1)
        _finish(stream, job.id, 1)
        assert _get(qpi_server, broke, waiting.id).state == PENDING
    finally:
        stream.close()


def test_an_active_booking_of_another_user_sends_jobs_through_the_queue(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=100.0)
    _, booker = qpi_server.create_user("bob@example.com", qpu_seconds=100.0)
    stream = _idle_driver(qpi_server, "q1", token, bell_qasm)
    try:
        start = datetime.now(UTC) + timedelta(seconds=0.5)
        begins, ends = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        begins.FromDatetime(start)
        ends.FromDatetime(start + timedelta(minutes=30))
        booking_service_pb2_grpc.BookingServiceStub(qpi_server.channel()).CreateTimeSlot(
            booking_service_pb2.CreateTimeSlotRequest(
                time_slot=booking_pb2.TimeSlot(start_time=begins, end_time=ends)
            ),
            metadata=qpi_server.auth(booker),
        )
        time.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.1)  # it began
        job = qpi_server.submit(token, bell_qasm, qpu="q1")
        # Bob's booking decides who runs now: the queue's policy, not a direct lease.
        assert job.state == PENDING
    finally:
        stream.close()
