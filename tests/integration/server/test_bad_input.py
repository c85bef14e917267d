"""Bad input gets the right gRPC status, a message naming the problem, and ErrorInfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qpi.v1 import (
    booking_pb2,
    booking_service_pb2,
    booking_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    qpu_pb2,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)
from tests.support.harness import ServerHarness


def _reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no rich status attached"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "qpi.v1"
            return str(info.reason)
    raise AssertionError("no ErrorInfo in status")


def _expect(call, code: grpc.StatusCode, reason: str, *words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        call()
    err = exc.value
    assert err.code() == code, err.details()
    assert _reason(err) == reason
    for word in words:
        assert word.lower() in (err.details() or "").lower(), err.details()


@pytest.fixture
def env(server_factory):  # type: ignore[no-untyped-def]
    server: ServerHarness = server_factory(max_shots=1000, max_payload_bytes=4096)
    server.create_qpu("q1", num_qubits=4)
    server.register_qpu("off")
    _, alice = server.create_user("alice@example.com")
    _, bob = server.create_user("bob@example.com")
    return server, alice, bob


def _submit(
    server: ServerHarness, token: str | None, payload: job_pb2.JobPayload, qpu: str = "q1"
) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    md = server.auth(token) if token is not None else None
    return stub.CreateJob(
        job_service_pb2.CreateJobRequest(payload=payload, qpu=qpu), metadata=md
    ).job


def test_unauthenticated_and_bad_tokens(env, bell_qasm) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = env
    payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm)], shots=10)
    _expect(
        lambda: _submit(server, None, payload),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        "authentication",
    )
    _expect(
        lambda: _submit(server, "qpi_" + "0" * 64, payload),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
        "invalid",
    )
    _expect(
        lambda: _submit(server, "not.a.jwt", payload),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
        "session token",
    )


def test_wrong_owner_sees_not_found(env, bell_qasm) -> None:  # type: ignore[no-untyped-def]
    server, alice, bob = env
    job = _submit(
        server, alice, job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm)], shots=10)
    )
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    _expect(
        lambda: stub.GetJob(job_service_pb2.GetJobRequest(id=job.id), metadata=server.auth(bob)),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
        job.id,
    )
    _expect(
        lambda: stub.CancelJob(
            job_service_pb2.CancelJobRequest(id=job.id), metadata=server.auth(bob)
        ),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )
    listed = stub.ListJobs(job_service_pb2.ListJobsRequest(), metadata=server.auth(bob))
    assert listed.total_size == 0
    _expect(
        lambda: stub.ListJobs(
            job_service_pb2.ListJobsRequest(all_users=True), metadata=server.auth(bob)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_ONLY",
    )


@pytest.mark.parametrize(
    ("payload", "qpu", "code", "reason", "words"),
    [
        (
            job_pb2.JobPayload(shots=10),
            "q1",
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            ["circuit"],
        ),
        (
            job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm="hello world")], shots=10),
            "q1",
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_QASM",
            ["circuit 0"],
        ),
        (
            job_pb2.JobPayload(
                circuits=[job_pb2.Circuit(qasm="OPENQASM 2.0; qreg q[1]; bogus q[0];")], shots=10
            ),
            "q1",
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_QASM",
            ["circuit 0"],
        ),
        ("BELL", "nope", grpc.StatusCode.NOT_FOUND, "QPU_NOT_FOUND", ["nope"]),
        ("BELL-shots-0", "q1", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", ["shots"]),
        (
            "BELL-shots-big",
            "q1",
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            ["shots", "1000"],
        ),
        ("BIG", "q1", grpc.StatusCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE", ["4096"]),
        ("WIDE", "q1", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", ["6 qubits", "4"]),
    ],
)
def test_bad_submissions(env, bell_qasm, payload, qpu, code, reason, words) -> None:  # type: ignore[no-untyped-def]
    server, alice, _ = env
    if payload == "BELL":
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm)], shots=10)
    elif payload == "BELL-shots-0":
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm, shots=-5)], shots=10)
    elif payload == "BELL-shots-big":
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm)], shots=1001)
    elif payload == "BIG":
        payload = job_pb2.JobPayload(
            circuits=[job_pb2.Circuit(qasm=bell_qasm + "// " + "x" * 5000)], shots=10
        )
    elif payload == "WIDE":
        payload = job_pb2.JobPayload(
            circuits=[job_pb2.Circuit(qasm="OPENQASM 2.0; qreg q[6];")], shots=10
        )
    _expect(lambda: _submit(server, alice, payload, qpu), code, reason, *words)


def test_disabled_qpu_and_no_balance(env, bell_qasm) -> None:  # type: ignore[no-untyped-def]
    server, alice, _ = env
    qpus = qpu_service_pb2_grpc.QpuServiceStub(server.channel())
    qpus.UpdateQpu(
        qpu_service_pb2.UpdateQpuRequest(
            qpu=qpu_pb2.Qpu(id="off", enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=server.auth(server.admin_token),
    )
    payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=bell_qasm)], shots=10)
    _expect(
        lambda: _submit(server, alice, payload, "off"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "QPU_DISABLED",
        "off",
        "disabled",
    )
    _, broke = server.create_user("broke@example.com", qpu_seconds=0)
    _expect(
        lambda: _submit(server, broke, payload),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INSUFFICIENT_QPU_SECONDS",
        "insufficient qpu seconds",
    )
    _expect(
        lambda: qpus.UpdateQpu(
            qpu_service_pb2.UpdateQpuRequest(
                qpu=qpu_pb2.Qpu(id="q1", enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            ),
            metadata=server.auth(alice),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_ONLY",
        "admin",
    )


def _ts(dt: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt)
    return out


def test_bad_bookings(env) -> None:  # type: ignore[no-untyped-def]
    server, alice, bob = env
    stub = booking_service_pb2_grpc.BookingServiceStub(server.channel())
    now = datetime.now(UTC)

    def book(token: str, start: datetime, end: datetime) -> booking_pb2.TimeSlot:
        slot = booking_pb2.TimeSlot(start_time=_ts(start), end_time=_ts(end))
        return stub.CreateTimeSlot(
            booking_service_pb2.CreateTimeSlotRequest(time_slot=slot), metadata=server.auth(token)
        ).time_slot

    _expect(
        lambda: book(alice, now - timedelta(hours=1), now + timedelta(hours=1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "BOOKING_IN_PAST",
        "past",
    )
    _expect(
        lambda: book(alice, now + timedelta(hours=2), now + timedelta(hours=1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "BOOKING_INVALID_RANGE",
        "strictly before",
    )
    slot = book(alice, now + timedelta(hours=1), now + timedelta(hours=2))
    _expect(
        lambda: book(bob, now + timedelta(hours=1.5), now + timedelta(hours=2.5)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "BOOKING_OVERLAP",
        "overlaps",
    )
    _expect(
        lambda: stub.DeleteTimeSlot(
            booking_service_pb2.DeleteTimeSlotRequest(id=slot.id), metadata=server.auth(bob)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )


def test_out_of_range_values_are_invalid_arguments_not_internal(env) -> None:  # type: ignore[no-untyped-def]
    from qpi.v1 import account_service_pb2, account_service_pb2_grpc

    server, alice, _ = env
    accounts = account_service_pb2_grpc.AccountServiceStub(server.channel())
    far = timestamp_pb2.Timestamp(seconds=253402300810)  # after year 9999
    _expect(
        lambda: accounts.CreateApiToken(
            account_service_pb2.CreateApiTokenRequest(name="x", expire_time=far),
            metadata=server.auth(alice),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "expire_time",
    )
    jobs = job_service_pb2_grpc.JobServiceStub(server.channel())
    huge = "x" * 20_000  # echoing this in the status would exceed gRPC's header limit
    _expect(
        lambda: jobs.GetJob(job_service_pb2.GetJobRequest(id=huge), metadata=server.auth(alice)),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )
    wide = job_pb2.JobPayload(
        circuits=[job_pb2.Circuit(qasm="OPENQASM 2.0;\nqreg q[3000000];\n")], shots=10
    )
    _expect(
        lambda: _submit(server, alice, wide),
        grpc.StatusCode.INVALID_ARGUMENT,
        "CIRCUIT_TOO_LARGE",
        "3000000",
        "--max-circuit-width",
    )
