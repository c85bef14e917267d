"""Batched claims, group-committed results and driver prefetch against a real server.

A driver announcing `prefetch` gets jobs beyond its capacity to queue while it runs one;
those queued jobs must never let anyone jump a booking.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _get(server: ServerHarness, token: str, job_id: str) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    return stub.GetJob(job_service_pb2.GetJobRequest(id=job_id), metadata=server.auth(token)).job


def _book(server: ServerHarness, token: str, qpu_id: str, start: datetime) -> None:
    def ts(dt: datetime) -> timestamp_pb2.Timestamp:
        out = timestamp_pb2.Timestamp()
        out.FromDatetime(dt)
        return out

    booking_service_pb2_grpc.BookingServiceStub(server.channel()).CreateTimeSlot(
        booking_service_pb2.CreateTimeSlotRequest(
            time_slot=booking_pb2.TimeSlot(
                start_time=ts(start), end_time=ts(start + timedelta(minutes=10)), qpu_id=qpu_id
            )
        ),
        metadata=server.auth(token),
    )


def _result(stream: RawStream, job_id: str, attempt: int) -> None:
    stream.send(
        pb.ConnectRequest(
            job_result=pb.JobResult(
                job_id=job_id, attempt=attempt, result_json=RESULT, execution_seconds=0.5
            )
        )
    )


def _assigned(stream: RawStream) -> tuple[str, int]:
    a = stream.next("job_assignment").job_assignment
    stream.send(pb.ConnectRequest(job_accepted=pb.JobAccepted(job_id=a.job_id, attempt=a.attempt)))
    return a.job_id, a.attempt


def test_batched_claims_lease_each_job_once_and_charge_every_result(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    qpu_id, driver_token = qpi_server.register_qpu("q1")
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=100.0)
    jobs = [qpi_server.submit(token, bell_qasm, qpu="q1").id for _ in range(10)]
    stream = RawStream(qpi_server, driver_token, [], capacity=4)
    try:
        stream.next("welcome")
        leases = [_assigned(stream) for _ in range(4)]
        assert len({job_id for job_id, _ in leases}) == 4
        # Only as many leases as the capacity: the fifth job stays pending.
        running = [j for j in jobs if _get(qpi_server, token, j).state == job_pb2.Job.STATE_RUNNING]
        assert sorted(running) == sorted(job_id for job_id, _ in leases)
        # Results arriving together are stored together; each frees one slot.
        while len(leases) < len(jobs):
            for job_id, attempt in leases[-4:]:
                _result(stream, job_id, attempt)
            leases += [_assigned(stream) for _ in range(min(4, len(jobs) - len(leases)))]
        for job_id, attempt in leases[-2:]:
            _result(stream, job_id, attempt)
        assert sorted(job_id for job_id, _ in leases) == sorted(jobs)
        assert {attempt for _, attempt in leases} == {1}  # each job leased exactly once
        done = [qpi_server.wait(token, j) for j in jobs]
        assert all(j.state == job_pb2.Job.STATE_COMPLETED for j in done)
        assert all(j.charged_seconds == 0.5 for j in done)
        me = (
            account_service_pb2_grpc.AccountServiceStub(qpi_server.channel())
            .GetCurrentUser(
                account_service_pb2.GetCurrentUserRequest(), metadata=qpi_server.auth(token)
            )
            .user.qpu_seconds
        )
        assert abs(me - (100.0 - 10 * 0.5)) < 1e-6, me  # every result charged once
    finally:
        stream.close()


def test_prefetched_job_of_another_user_is_taken_back_when_a_booking_starts(
    server_factory: Callable[..., ServerHarness], bell_qasm: str
) -> None:
    # The hand-driven stream sends no heartbeats while the test waits for the booking to
    # start (wall-clock time): on a loaded machine the harness's 2 s timeout ended the
    # driver's session first, so this server waits longer for a silent driver.
    qpi_server = server_factory(heartbeat_timeout=30.0)
    qpu_id, driver_token = qpi_server.register_qpu("q1")
    _, bob = qpi_server.create_user("bob@example.com")
    _, alice = qpi_server.create_user("alice@example.com")
    b1 = qpi_server.submit(bob, bell_qasm, qpu="q1").id
    b2 = qpi_server.submit(bob, bell_qasm, qpu="q1").id
    stream = RawStream(qpi_server, driver_token, [], capacity=1, prefetch=1)
    try:
        stream.next("welcome")
        # Capacity 1 plus one prefetched job: Bob's second job waits queued on the driver.
        first, queued = _assigned(stream), _assigned(stream)
        assert (first[0], queued[0]) == (b1, b2)
        # Alice's booking starts while b1 still runs: the queued b2 must not run before
        # her jobs, so the server takes it back (whatever the machine's speed, the booking
        # is created after the prefetch).
        _book(qpi_server, alice, qpu_id, datetime.now(UTC) + timedelta(seconds=1))
        cancelled = stream.next("job_cancellation").job_cancellation
        assert (cancelled.job_id, cancelled.attempt) == queued
        wait_until(
            lambda: _get(qpi_server, bob, b2).state == job_pb2.Job.STATE_PENDING,
            30,
            "b2 back in the queue",
        )
        # During the booking only Alice's jobs are prefetched: hers comes next, not b2.
        a1 = qpi_server.submit(alice, bell_qasm, qpu="q1").id
        assert _assigned(stream)[0] == a1
        _result(stream, *first)
        assert qpi_server.wait(bob, b1).state == job_pb2.Job.STATE_COMPLETED
        assert _get(qpi_server, bob, b2).state == job_pb2.Job.STATE_PENDING
    finally:
        stream.close()


def test_old_drivers_get_no_more_than_their_capacity(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, driver_token = qpi_server.register_qpu("q1")
    _, token = qpi_server.create_user("alice@example.com")
    jobs = [qpi_server.submit(token, bell_qasm, qpu="q1").id for _ in range(3)]
    stream = RawStream(qpi_server, driver_token, [], capacity=1)  # no prefetch announced
    try:
        stream.next("welcome")
        first = _assigned(stream)
        assert first[0] == jobs[0]
        states = [_get(qpi_server, token, j).state for j in jobs[1:]]
        assert states == [job_pb2.Job.STATE_PENDING] * 2
        _result(stream, *first)
        assert _assigned(stream)[0] == jobs[1]
    finally:
        stream.close()
