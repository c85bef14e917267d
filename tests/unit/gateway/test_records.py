"""Proto → REST shapes and PocketBase timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from qpi.gateway import records, timefmt
from qpi.v1 import account_pb2, booking_pb2, job_pb2, notification_pb2, qpu_pb2


def ts(text: str) -> timestamp_pb2.Timestamp:
    return timefmt.to_timestamp(text)


def test_timestamp_format_is_pocketbase_style() -> None:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC))
    assert timefmt.format_timestamp(stamp) == "2026-01-02 03:04:05.678Z"
    assert timefmt.format_timestamp(timestamp_pb2.Timestamp()) == ""
    assert timefmt.format_timestamp(None) == ""


@pytest.mark.parametrize(
    "text",
    ["2026-01-02 03:04:05.678Z", "2026-01-02T03:04:05.678Z", "2026-01-02T04:04:05.678+01:00"],
)
def test_date_parsing_round_trips(text: str) -> None:
    assert timefmt.format_timestamp(ts(text)) == "2026-01-02 03:04:05.678Z"


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-02-30T00:00:00Z"])
def test_bad_dates_raise(text: str) -> None:
    with pytest.raises(timefmt.DateFormatError):
        timefmt.to_timestamp(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02t03:04:05z", "2026-01-02 03:04:05.000Z"),  # RFC 3339 allows lower case
        ("2016-12-31T23:59:60Z", "2016-12-31 23:59:59.000Z"),  # a leap second
        ("0001-01-01T00:00:00+05:00", "0001-01-01 00:00:00.000Z"),  # clamped into range
        ("9999-12-31T23:00:00-05:00", "9999-12-31 23:59:59.999Z"),
    ],
)
def test_every_rfc3339_date_time_is_accepted(text: str, expected: str) -> None:
    assert timefmt.format_timestamp(timefmt.to_timestamp(text)) == expected


def make_job(**kwargs: object) -> job_pb2.Job:
    payload = job_pb2.JobPayload(
        circuits=[
            job_pb2.Circuit(
                qasm="OPENQASM 2.0;",
                parameter_values=[job_pb2.ParameterSet(values=[0.5])],
                shots=10,
            ),
            job_pb2.Circuit(qasm="OPENQASM 3.0;"),
        ],
        shots=100,
        meas_return=job_pb2.MEAS_RETURN_AVG,
    )
    job = job_pb2.Job(
        id="j1",
        user_id="u1",
        qpu_id="q1",
        payload=payload,
        state=job_pb2.Job.STATE_PENDING,
        create_time=ts("2026-01-01 00:00:00.000Z"),
        update_time=ts("2026-01-01 00:00:01.000Z"),
    )
    for key, value in kwargs.items():
        setattr(job, key, value)
    return job


def test_pending_job_object_omits_empty_fields_in_order() -> None:
    obj = records.job_object(make_job())
    assert list(obj) == ["id", "user_id", "qpu_target", "payload", "status", "created", "updated"]
    assert obj["payload"] == {
        "circuits": [
            {"circuit": "OPENQASM 2.0;", "parameter_values": [[0.5]], "shots": 10},
            {"circuit": "OPENQASM 3.0;"},
        ],
        "shots": 100,
        "meas_level": 2,
        "meas_return": "avg",
        "qpu_target": "q1",
    }
    assert obj["status"] == "pending"
    assert obj["created"] == "2026-01-01 00:00:00.000Z"


def test_completed_job_has_real_results() -> None:
    result = {"shots": 100, "circuit_results": [{"counts": {"00": 50, "11": 50}}]}
    job = make_job(
        state=job_pb2.Job.STATE_COMPLETED, result_json=json.dumps(result), charged_seconds=1.5
    )
    job.finish_time.CopyFrom(ts("2026-01-01 00:00:05.000Z"))
    obj = records.job_object(job)
    assert obj["results"] == result
    assert obj["duration"] == 1.5
    assert obj["finished_at"] == "2026-01-01 00:00:05.000Z"
    assert list(obj)[-2:] == ["created", "updated"]


def test_failed_job_results_carry_the_error() -> None:
    obj = records.job_object(make_job(state=job_pb2.Job.STATE_FAILED, error="bad qasm"))
    assert obj["status"] == "failed"
    assert obj["results"] == {"error": "bad qasm"}


def test_job_record_has_every_field() -> None:
    record = records.job_record(make_job())
    assert record["finished_at"] == ""
    assert record["duration"] == 0
    assert record["results"] is None
    assert record["attempt"] == 0
    assert record["started_at"] == ""
    assert record["user_email"] == ""
    leased = make_job()
    leased.attempt = 2
    leased.user_email = "a@example.com"
    leased.start_time.CopyFrom(ts("2026-01-01 00:00:01Z"))
    record = records.job_record(leased)
    assert (record["attempt"], record["started_at"], record["user_email"]) == (
        2,
        "2026-01-01 00:00:01.000Z",
        "a@example.com",
    )


def test_qpu_object() -> None:
    qpu = qpu_pb2.Qpu(
        id="q1",
        name="sim",
        status=qpu_pb2.Qpu.STATUS_ONLINE,
        enabled=True,
        num_qubits=5,
        executor="mock",
        native_gates=["x", "sx", "rz", "cx"],
        coupling_map=[qpu_pb2.CouplingEdge(source=0, target=1)],
        queue_length=3,
        capabilities=qpu_pb2.QpuCapabilities(
            meas_levels=[1, 2],
            instructions=[
                qpu_pb2.InstructionProperties(name="x", qubits=[0], duration_seconds=2e-8),
                qpu_pb2.InstructionProperties(name="cx", qubits=[0, 1], error=0.01),
            ],
        ),
    )
    assert records.qpu_object(qpu) == {
        "id": "q1",
        "name": "sim",
        "status": "online",
        "num_qubits": 5,
        "enabled": True,
        "executor": "mock",
        "native_gates": ["x", "sx", "rz", "cx"],
        "coupling_map": [[0, 1]],
        "capabilities": {
            "meas_levels": [1, 2],
            "instructions": [
                {"name": "x", "qubits": [0], "duration_seconds": 2e-8},
                {"name": "cx", "qubits": [0, 1], "error": 0.01},
            ],
        },
        "queue_length": 3,
        "created": "",
        "updated": "",
    }


def test_token_shapes_never_include_secrets() -> None:
    token = account_pb2.ApiToken(
        id="t1", user_id="u1", name="ci", prefix="qpi_ab", create_time=ts("2026-01-01 00:00:00Z")
    )
    assert records.token_object(token) == {
        "id": "t1",
        "name": "ci",
        "created": "2026-01-01 00:00:00.000Z",
    }
    record = records.token_record(token)
    assert "token" not in record
    assert record["user"] == "u1"
    assert record["expires_at"] == ""


def test_booking_and_request_and_notification_records() -> None:
    slot = booking_pb2.TimeSlot(
        id="s1",
        user_id="u1",
        start_time=ts("2026-01-01 10:00:00Z"),
        end_time=ts("2026-01-01 11:00:00Z"),
    )
    assert records.time_slot_record(slot)["booked_by"] == "u1"
    assert records.time_slot_record(slot)["qpu"] == ""
    req = booking_pb2.TimeRequest(
        id="r1",
        user_id="u1",
        seconds=300,
        state=booking_pb2.TimeRequest.STATE_APPROVED,
        handled_by="a",
    )
    assert records.time_request_record(req)["status"] == "approved"
    note = notification_pb2.Notification(
        id="n1", title="t", target_user_ids=["u1", "u2"], dismissed=True
    )
    rec = records.notification_record(note)
    assert rec["target_users"] == ["u1", "u2"]
    assert "dismissed_by" not in rec
    assert rec["dismissed"] is True
    assert rec["start_time"] == ""
