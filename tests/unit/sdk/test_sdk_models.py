"""Conversion of wire protos into the SDK's frozen dataclasses."""

import dataclasses
import datetime as dt
import json

import pytest
from google.protobuf import timestamp_pb2

from qpi.sdk import Driver, Event, Job, Notification, Qpu, TimeRequest, TimeSlot, User
from qpi.sdk.records import CreatedApiToken, CreatedQpu, ServerInfo
from qpi.v1 import (
    account_pb2,
    account_service_pb2,
    admin_service_pb2,
    booking_pb2,
    event_service_pb2,
    job_pb2,
    notification_pb2,
    qpu_pb2,
    qpu_service_pb2,
)

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)


def stamp(when: dt.datetime = T0) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value


def completed_job_proto() -> job_pb2.Job:
    result = {
        "shots": 10,
        "success": True,
        "circuit_results": [{"counts": {"00": 4, "01": 0, "10": 0, "11": 6}, "shots": 10}],
        "counts": {"00": 4, "01": 0, "10": 0, "11": 6},
    }
    return job_pb2.Job(
        id="abcdefghijklmno",
        user_id="u1",
        qpu_id="q1",
        qpu_name="qpu-1",
        state=job_pb2.Job.STATE_COMPLETED,
        payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm="x")], shots=10),
        result_json=json.dumps(result),
        attempt=1,
        charged_seconds=0.25,
        create_time=stamp(),
        finish_time=stamp(T0 + dt.timedelta(seconds=2)),
    )


def test_job_from_proto_parses_state_result_and_times() -> None:
    job = Job._from_proto(completed_job_proto())
    assert job.state == "completed"
    assert job.done
    assert job.counts == {"00": 4, "01": 0, "10": 0, "11": 6}
    assert job.result is not None
    assert job.result["shots"] == 10
    assert job.created == T0
    assert job.finished == T0 + dt.timedelta(seconds=2)
    assert job.updated is None
    assert job.started is None
    assert (job.qpu_id, job.qpu_name, job.attempt, job.charged_seconds) == (
        "q1",
        "qpu-1",
        1,
        0.25,
    )
    assert (job.shots, job.num_circuits) == (10, 1)


def test_job_is_frozen() -> None:
    job = Job._from_proto(completed_job_proto())
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.state = "failed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("state", "name", "done"),
    [
        (job_pb2.Job.STATE_PENDING, "pending", False),
        (job_pb2.Job.STATE_RUNNING, "running", False),
        (job_pb2.Job.STATE_FAILED, "failed", True),
        (job_pb2.Job.STATE_CANCELLED, "cancelled", True),
    ],
)
def test_job_states_are_lowercase_names(state: int, name: str, done: bool) -> None:
    job = Job._from_proto(job_pb2.Job(id="j", state=state))  # type: ignore[arg-type]
    assert (job.state, job.done, job.result, job.counts) == (name, done, None, None)


def test_job_counts_fall_back_to_first_circuit_result() -> None:
    msg = job_pb2.Job(id="j", result_json=json.dumps({"circuit_results": [{"counts": {"1": 3}}]}))
    assert Job._from_proto(msg).counts == {"1": 3}


def test_qpu_and_driver_from_proto() -> None:
    qpu = Qpu._from_proto(
        qpu_pb2.Qpu(
            id="q1",
            name="qpu-1",
            status=qpu_pb2.Qpu.STATUS_ONLINE,
            enabled=True,
            num_qubits=3,
            coupling_map=[qpu_pb2.CouplingEdge(source=0, target=1)],
            native_gates=["rz", "cz"],
            queue_length=2,
        )
    )
    assert qpu.status == "online"
    assert qpu.coupling_map == ((0, 1),)
    assert qpu.native_gates == ("rz", "cz")
    driver = Driver._from_proto(
        qpu_pb2.Driver(id="d", qpu_id="q1", status=qpu_pb2.Driver.STATUS_OFFLINE, kind="mock")
    )
    assert (driver.status, driver.kind, driver.last_seen) == ("offline", "mock", None)


def test_booking_notification_user_from_proto() -> None:
    slot = TimeSlot._from_proto(
        booking_pb2.TimeSlot(id="s", start_time=stamp(), end_time=stamp(T0 + dt.timedelta(1)))
    )
    assert slot.start == T0
    assert slot.qpu_id == ""
    request = TimeRequest._from_proto(
        booking_pb2.TimeRequest(id="r", seconds=60, state=booking_pb2.TimeRequest.STATE_PENDING)
    )
    assert (request.state, request.seconds) == ("pending", 60)
    note = Notification._from_proto(
        notification_pb2.Notification(id="n", title="t", target_user_ids=["u1"])
    )
    assert note.target_user_ids == ("u1",)
    user = User._from_proto(account_pb2.User(id="u", email="a@b.c", qpu_seconds=5))
    assert (user.email, user.qpu_seconds, user.is_superuser) == ("a@b.c", 5.0, False)


def test_composite_records_from_proto() -> None:
    created = CreatedQpu._from_proto(
        qpu_service_pb2.CreateQpuResponse(
            qpu=qpu_pb2.Qpu(id="q"), access_token="qpi_x", ca_fingerprint="ff"
        )
    )
    assert (created.qpu.id, created.driver, created.access_token) == ("q", None, "qpi_x")
    token = CreatedApiToken._from_proto(
        account_service_pb2.CreateApiTokenResponse(
            api_token=account_pb2.ApiToken(id="t", prefix="qpi_ab"), token="qpi_abc"
        )
    )
    assert (token.token, token.api_token.prefix) == ("qpi_abc", "qpi_ab")
    info = ServerInfo._from_proto(
        admin_service_pb2.GetServerInfoResponse(version="v1", grpc_tls=True)
    )
    assert (info.version, info.grpc_tls) == ("v1", True)


def test_event_from_proto_picks_the_set_payload() -> None:
    job_event = Event._from_proto(
        event_service_pb2.SubscribeResponse(job=job_pb2.Job(id="j", state=3))
    )
    assert job_event.kind == "job"
    assert job_event.job is not None
    assert job_event.job.state == "completed"
    deleted = Event._from_proto(event_service_pb2.SubscribeResponse(deleted_notification_id="n"))
    assert (deleted.kind, deleted.deleted_notification_id) == ("deleted_notification_id", "n")
