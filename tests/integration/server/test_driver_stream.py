"""Driver stream protocol details: resuming leases on a replacement stream."""

from __future__ import annotations

import json
import time

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import job_pb2
from tests.support.harness import ServerHarness
from tests.support.raw_stream import RawStream


def test_replacement_stream_keeps_resumed_lease(qpi_server: ServerHarness, bell_qasm: str) -> None:
    _, token = qpi_server.register_qpu("q1")
    _, user = qpi_server.create_user("alice@example.com")
    first = RawStream(qpi_server, token, [])
    first.next("welcome")
    job = qpi_server.submit(user, bell_qasm, qpu="q1")
    assignment = first.next("job_assignment").job_assignment
    lease = (assignment.job_id, assignment.attempt)
    second = RawStream(qpi_server, token, [lease])
    welcome = second.next("welcome").welcome
    assert [(h.job_id, h.attempt) for h in welcome.resumed_jobs] == [lease]
    first.close()
    time.sleep(0.5)  # the old stream's teardown must not requeue the resumed lease
    result = {
        "shots": 100,
        "success": True,
        "circuit_results": [{"counts": {"00": 100}, "shots": 100}],
    }
    second.out.put(
        pb.ConnectRequest(
            job_result=pb.JobResult(
                job_id=lease[0],
                attempt=lease[1],
                result_json=json.dumps(result),
                execution_seconds=0.1,
            )
        )
    )
    ack = second.next("result_ack").result_ack
    assert ack.accepted
    done = qpi_server.wait(user, job.id)
    assert done.state == job_pb2.Job.STATE_COMPLETED
    assert done.attempt == 1
    second.close()


def test_telemetry_is_stored_for_admins_and_rate_limited(server_factory) -> None:  # type: ignore[no-untyped-def]
    import grpc
    import pytest

    from qpi.v1 import admin_service_pb2, admin_service_pb2_grpc

    server: ServerHarness = server_factory(event_rate_limit=3)
    _, token = server.register_qpu("fridge")
    _, user = server.create_user("alice@example.com")
    stream = RawStream(server, token, [])
    stream.next("welcome")
    reading = {"readings": {"mapper.bf.tmc": {"value": 0.0123, "unit": "K"}}}
    for _ in range(5):  # burst of 5 against a limit of 3 per second
        stream.out.put(
            pb.ConnectRequest(
                telemetry=pb.TelemetryReport(
                    type="CryostatReading", payload_json=json.dumps(reading)
                )
            )
        )
    admin = admin_service_pb2_grpc.AdminServiceStub(server.channel())
    request = admin_service_pb2.ListTelemetryEventsRequest(type="CryostatReading")
    deadline = time.monotonic() + 5
    events: list[admin_service_pb2.TelemetryEvent] = []
    while time.monotonic() < deadline and len(events) < 3:
        events = list(
            admin.ListTelemetryEvents(request, metadata=server.auth(server.admin_token)).events
        )
        time.sleep(0.1)
    time.sleep(0.3)
    events = list(
        admin.ListTelemetryEvents(request, metadata=server.auth(server.admin_token)).events
    )
    assert len(events) == 3
    assert json.loads(events[0].payload_json) == reading
    with pytest.raises(grpc.RpcError) as exc:
        admin.ListTelemetryEvents(request, metadata=server.auth(user))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    stream.close()


def test_quick_reconnect_still_receives_new_jobs(qpi_server: ServerHarness, bell_qasm: str) -> None:
    _, token = qpi_server.register_qpu("q1")
    _, user = qpi_server.create_user("alice@example.com")
    for _ in range(5):  # drop and re-open the stream repeatedly, back to back
        stream = RawStream(qpi_server, token, [])
        stream.next("welcome")
        stream.close()
    stream = RawStream(qpi_server, token, [])
    stream.next("welcome")
    job = qpi_server.submit(user, bell_qasm, qpu="q1")
    assignment = stream.next("job_assignment").job_assignment
    assert assignment.job_id == job.id
    stream.close()
