"""Events cross replicas: dispatch, WatchJob, SDK wait(), SSE and cancellation.

Each test submits on one replica and acts on the other; with the safety poll at an hour,
only a relayed event can make any of it happen in time.
"""

from __future__ import annotations

import json
import threading
import time

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qpi.sdk import QPIClient
from qpi.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    qpu_pb2,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)
from tests.integration.replicas.conftest import Cluster
from tests.support.raw_stream import RawStream

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_submit_on_a_runs_on_a_driver_of_b_and_a_watcher_on_a_sees_it(cluster: Cluster) -> None:
    driver = cluster.b.attach_mini_driver(cluster.driver_token)
    job = cluster.a.submit(cluster.token, BELL, qpu=cluster.qpu_name)
    # Watched on A, dispatched and completed through B.
    done = cluster.a.wait(cluster.token, job.id)
    assert done.state == done.STATE_COMPLETED
    assert [j for j, _ in driver.executed] == [job.id]


def test_sdk_wait_on_a_for_a_job_finished_through_b(cluster: Cluster) -> None:
    cluster.b.attach_mini_driver(cluster.driver_token)
    with (
        QPIClient(cluster.a.grpc_target, api_token=cluster.token) as on_a,
        QPIClient(cluster.b.grpc_target, api_token=cluster.token) as on_b,
    ):
        job = on_b.submit_job(BELL, shots=10, qpu_target=cluster.qpu_name)
        done = on_a.wait(job.id, timeout=30)
        assert done.state == "completed"
        assert done.result is not None


def test_sse_on_a_streams_a_job_run_through_b(cluster: Cluster) -> None:
    cluster.b.attach_mini_driver(cluster.driver_token)
    submitted: list[str] = []

    def submit_on_b() -> None:
        submitted.append(cluster.b.submit(cluster.token, BELL, qpu=cluster.qpu_name).id)

    statuses: list[str] = []
    with (
        httpx.Client(base_url=cluster.a.http_url, timeout=30) as http,
        http.stream(
            "GET",
            "/api/realtime/events",
            params={"token": cluster.token, "topics": "jobs"},
            timeout=httpx.Timeout(30),
        ) as resp,
    ):
        assert resp.status_code == 200
        threading.Timer(0.3, submit_on_b).start()
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "job":
                job = json.loads(line.split(":", 1)[1])
                statuses.append(job["status"])
                if job["status"] == "completed":
                    assert job["id"] == submitted[0]
                    assert job["results"]["circuit_results"]
                    break
    assert statuses[-1] == "completed"


def test_cancel_on_a_revokes_the_lease_of_a_driver_on_b(cluster: Cluster) -> None:
    driver = cluster.b.attach_mini_driver(cluster.driver_token, delay=60.0)
    job = cluster.a.submit(cluster.token, BELL, qpu=cluster.qpu_name)
    stub = job_service_pb2_grpc.JobServiceStub(cluster.a.channel())
    auth = cluster.a.auth(cluster.token)

    def state() -> int:
        return stub.GetJob(job_service_pb2.GetJobRequest(id=job.id), metadata=auth).job.state

    _until(lambda: state() == job.STATE_RUNNING)
    stub.CancelJob(job_service_pb2.CancelJobRequest(id=job.id), metadata=auth)
    _until(lambda: job.id in driver.cancelled)
    assert state() == job.STATE_CANCELLED


def test_disabling_a_driver_through_a_ends_its_stream_on_b(cluster: Cluster) -> None:
    stream = RawStream(cluster.b, cluster.driver_token, [])
    stream.next("welcome")
    stub = qpu_service_pb2_grpc.QpuServiceStub(cluster.a.channel())
    admin = cluster.a.auth(cluster.a.admin_token)
    (driver,) = stub.ListDrivers(
        qpu_service_pb2.ListDriversRequest(qpu_id=cluster.qpu_id), metadata=admin
    ).drivers
    stub.UpdateDriver(
        qpu_service_pb2.UpdateDriverRequest(
            driver=qpu_pb2.Driver(id=driver.id, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=admin,
    )
    with pytest.raises(grpc.RpcError) as ended:
        stream.next("welcome")  # nothing else comes: B ends the stream with the reason
    info = error_details_pb2.ErrorInfo()
    status = rpc_status.from_call(ended.value)  # type: ignore[arg-type]
    assert status is not None
    assert any(d.Unpack(info) and info.reason == "DRIVER_DISABLED" for d in status.details)
    stream.close()
