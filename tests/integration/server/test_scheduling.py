"""Booking priority, idle hand-over and cancellation against a real server and driver."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
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
from tests.support.harness import ServerHarness


def _ts(dt: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt)
    return out


def _book(server: ServerHarness, token: str, start: datetime, end: datetime, qpu: str = "") -> None:
    stub = booking_service_pb2_grpc.BookingServiceStub(server.channel())
    stub.CreateTimeSlot(
        booking_service_pb2.CreateTimeSlotRequest(
            time_slot=booking_pb2.TimeSlot(start_time=_ts(start), end_time=_ts(end), qpu_id=qpu)
        ),
        metadata=server.auth(token),
    )


def _get(server: ServerHarness, token: str, job_id: str) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    return stub.GetJob(job_service_pb2.GetJobRequest(id=job_id), metadata=server.auth(token)).job


def _wait_state(
    server: ServerHarness, token: str, job_id: str, state: int, timeout: float = 10
) -> job_pb2.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _get(server, token, job_id)
        if job.state == state:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached state {state}; last {job.state}")


def test_booked_user_jumps_the_fifo_queue(qpi_server: ServerHarness, bell_qasm: str) -> None:
    # The queue is built while no driver is attached, so the dispatch order is decided by
    # the policy alone, whatever the machine's load.
    qpu_id, driver_token = qpi_server.register_qpu("q1")
    _, other = qpi_server.create_user("bob@example.com")
    _, booker = qpi_server.create_user("alice@example.com")
    start = datetime.now(UTC) + timedelta(seconds=1)
    _book(qpi_server, booker, start, start + timedelta(minutes=10), qpu=qpu_id)
    time.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    others = [qpi_server.submit(other, bell_qasm, qpu="q1") for _ in range(3)]
    mine = qpi_server.submit(booker, bell_qasm, qpu="q1")
    qpi_server.attach_mini_driver(driver_token, name="q1-mini")
    done_mine = qpi_server.wait(booker, mine.id)
    finished_others = [qpi_server.wait(other, j.id) for j in others]
    # Alice's job ran before every one of Bob's earlier jobs.
    assert done_mine.state == job_pb2.Job.STATE_COMPLETED
    assert all(
        j.start_time.ToDatetime() >= done_mine.finish_time.ToDatetime() for j in finished_others
    )


def test_idle_booker_yields_after_threshold(qpi_server: ServerHarness, bell_qasm: str) -> None:
    qpi_server.create_qpu("q1")
    _, booker = qpi_server.create_user("alice@example.com")
    _, other = qpi_server.create_user("bob@example.com")
    now = datetime.now(UTC)
    booking_end = now + timedelta(minutes=10)
    _book(qpi_server, booker, now + timedelta(seconds=0.5), booking_end)
    time.sleep(0.6)
    first = qpi_server.wait(booker, qpi_server.submit(booker, bell_qasm, qpu="q1").id)
    theirs = qpi_server.submit(other, bell_qasm, qpu="q1")
    done = qpi_server.wait(other, theirs.id)
    held_for = (done.start_time.ToDatetime() - first.finish_time.ToDatetime()).total_seconds()
    threshold = qpi_server.settings.idle_threshold
    assert done.state == job_pb2.Job.STATE_COMPLETED
    assert held_for >= threshold * 0.9, (
        f"QPU released after {held_for:.2f}s, threshold {threshold}s"
    )
    # Yielding means Bob's job ran inside Alice's booking; how soon after the threshold
    # depends on the machine's load, so it is not raced against a wall-clock budget.
    assert done.start_time.ToDatetime(tzinfo=UTC) < booking_end, "the idle booker never yielded"


def test_cancelled_pending_job_never_dispatches(qpi_server: ServerHarness, bell_qasm: str) -> None:
    qpi_server.create_qpu("q1", delay=0.5)
    _, token = qpi_server.create_user("alice@example.com")
    first = qpi_server.submit(token, bell_qasm, qpu="q1")
    second = qpi_server.submit(token, bell_qasm, qpu="q1")
    stub = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    cancelled = stub.CancelJob(
        job_service_pb2.CancelJobRequest(id=second.id), metadata=qpi_server.auth(token)
    ).job
    assert cancelled.state == job_pb2.Job.STATE_CANCELLED
    qpi_server.wait(token, first.id)
    time.sleep(0.3)
    driver = qpi_server.drivers[0]
    assert second.id not in {job_id for job_id, _ in driver.executed}
    assert _get(qpi_server, token, second.id).state == job_pb2.Job.STATE_CANCELLED


def test_cancel_running_job_reaches_driver_and_is_not_charged(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    qpi_server.create_qpu("q1", delay=1.5)
    user_id, token = qpi_server.create_user("alice@example.com", qpu_seconds=100)
    job = qpi_server.submit(token, bell_qasm, qpu="q1")
    _wait_state(qpi_server, token, job.id, job_pb2.Job.STATE_RUNNING)
    stub = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    stub.CancelJob(job_service_pb2.CancelJobRequest(id=job.id), metadata=qpi_server.auth(token))
    driver = qpi_server.drivers[0]
    deadline = time.monotonic() + 5
    while job.id not in driver.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.id in driver.cancelled
    time.sleep(2.0)  # past the driver's delay: any late result must be ignored
    final = _get(qpi_server, token, job.id)
    assert final.state == job_pb2.Job.STATE_CANCELLED
    assert final.charged_seconds == 0
    accounts = account_service_pb2_grpc.AccountServiceStub(qpi_server.channel())
    me = accounts.GetCurrentUser(
        account_service_pb2.GetCurrentUserRequest(), metadata=qpi_server.auth(token)
    ).user
    assert me.qpu_seconds == pytest.approx(100)
    assert me.id == user_id
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelJob(job_service_pb2.CancelJobRequest(id=job.id), metadata=qpi_server.auth(token))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
