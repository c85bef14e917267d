"""The NNG message formats: what the published drivers send and expect."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qpi.server.drivers.nng import envelope
from qpi.server.drivers.nng.envelope import Malformed, ResultMessage, TelemetryMessage

AT = datetime(2026, 7, 24, 10, 4, 5, 123456, tzinfo=UTC)


def test_dispatch_envelope_has_the_published_shape() -> None:
    payload = {"circuits": [{"circuit": "OPENQASM 2.0;"}], "shots": 10, "qpu_target": "q1"}
    message = json.loads(envelope.encode_dispatch(envelope.ENVELOPE, "d1", "j1", payload, AT))
    assert set(message) == {"id", "driver", "type", "ts", "payload"}
    assert message["id"].startswith("evt_")
    assert len(message["id"]) == 4 + 24
    int(message["id"][4:], 16)
    assert message["driver"] == "d1"
    assert message["type"] == "JobDispatch"
    assert message["ts"] == "2026-07-24T10:04:05.123Z"
    assert message["payload"] == {"job_id": "j1", "payload": payload}


def test_legacy_dispatch_is_a_bare_object() -> None:
    message = json.loads(envelope.encode_dispatch(envelope.LEGACY, "d1", "j1", {"shots": 1}, AT))
    assert message == {"job_id": "j1", "payload": {"shots": 1}}


def _env(kind: str, payload: object, **extra: object) -> bytes:
    body = {"id": "evt_x", "driver": "whoever", "type": kind, "ts": "2026-11-24T00:41:04.559Z"}
    return json.dumps({**body, "payload": payload, **extra}).encode()


def test_job_result_success_and_failure() -> None:
    counts = {"counts": {"00": 3, "11": 1}, "shots": 4}
    ok = envelope.decode(_env("JobResult", {"job_id": "j1", "results": counts}))
    assert ok == ResultMessage("j1", json.dumps(counts), None)
    failed = envelope.decode(_env("JobResult", {"job_id": "j2", "results": {"error": "bad QASM"}}))
    assert failed == ResultMessage("j2", None, "bad QASM")
    empty = envelope.decode(_env("JobResult", {"job_id": "j3", "results": {"error": ""}}))
    assert isinstance(empty, ResultMessage)
    assert empty.error == "The driver reported a failure without a message."


def test_result_given_as_a_json_string_and_legacy_results() -> None:
    as_string = envelope.decode(_env("JobResult", {"job_id": "j", "results": '{"counts": {}}'}))
    assert as_string == ResultMessage("j", '{"counts": {}}', None)
    legacy = envelope.decode(b'{"job_id": "j", "results": {"counts": {"0": 1}}}')
    assert legacy == ResultMessage("j", '{"counts": {"0": 1}}', None)


def test_cryostat_reading_becomes_telemetry_with_its_time() -> None:
    readings = {"mapper.bf.tmc": {"value": 0.0123, "unit": "K", "status": "SYNCHRONIZED"}}
    message = envelope.decode(_env("CryostatReading", {"readings": readings}))
    assert isinstance(message, TelemetryMessage)
    assert message.type == "CryostatReading"
    assert json.loads(message.payload_json) == {"readings": readings}
    assert message.at == datetime(2026, 11, 24, 0, 41, 4, 559000, tzinfo=UTC)


def test_unparsable_time_is_left_to_the_server_clock() -> None:
    data = _env("CryostatReading", {"readings": {"a": {"value": 1}}}, ts="yesterday")
    message = envelope.decode(data)
    assert isinstance(message, TelemetryMessage)
    assert message.at is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"hello": 1}', "neither an envelope nor a legacy result"),
        (_env("JobDispatch", {"job_id": "j"}), "unknown event type"),
        (_env("Bogus", {}), "unknown event type"),
        (_env("JobResult", []), "payload is not an object"),
        (_env("JobResult", {"results": {}}), "job_id"),
        (_env("JobResult", {"job_id": "x" * 101, "results": {}}), "job_id"),
        (_env("JobResult", {"job_id": "j", "results": 3}), "not an object"),
        (_env("JobResult", {"job_id": "j", "results": "{nope"}), "not JSON"),
        (_env("CryostatReading", {"readings": {}}), "without readings"),
        (_env("CryostatReading", {}), "without readings"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        envelope.decode(data)
