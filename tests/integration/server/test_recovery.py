"""Drivers and servers that vanish mid-job: nothing is lost, nothing runs twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from qpi.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from tests.support.harness import ServerHarness, make_settings
from tests.support.mini_driver import MiniDriver

ROOT = Path(__file__).resolve().parents[3]


def _spawn_driver(server: ServerHarness, token: str, delay: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/support/mini_driver.py"),
            "--target",
            server.grpc_target,
            "--token",
            token,
            "--delay",
            str(delay),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def _job(server: ServerHarness, token: str, job_id: str) -> job_pb2.Job:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    return stub.GetJob(job_service_pb2.GetJobRequest(id=job_id), metadata=server.auth(token)).job


def _balance(server: ServerHarness, token: str) -> float:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    return float(
        stub.GetCurrentUser(
            account_service_pb2.GetCurrentUserRequest(), metadata=server.auth(token)
        ).user.qpu_seconds
    )


def _until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_sigkilled_driver_job_requeued_within_2s_and_runs_once_elsewhere(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, driver_token = qpi_server.register_qpu("q1")
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=500)
    first = _spawn_driver(qpi_server, driver_token, delay=5.0)
    try:
        job = qpi_server.submit(token, bell_qasm, qpu="q1")
        _until(lambda: _job(qpi_server, token, job.id).state == job_pb2.Job.STATE_RUNNING, 10)
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        requeue_seconds = _until(
            lambda: _job(qpi_server, token, job.id).state == job_pb2.Job.STATE_PENDING, 2.0
        )
        assert requeue_seconds < 2.0
    finally:
        first.kill()
    second = MiniDriver(qpi_server.grpc_target, driver_token, name="second").start()
    qpi_server.drivers.append(second)
    done = qpi_server.wait(token, job.id)
    assert done.state == job_pb2.Job.STATE_COMPLETED
    assert done.attempt == 2
    assert second.executed == [(job.id, 2)]
    assert _balance(qpi_server, token) == 500 - done.charged_seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_restart_loses_nothing_and_drivers_reconnect(tmp_path: Path, bell_qasm: str) -> None:
    settings = make_settings(tmp_path / "srv", grpc_port=_free_port(), server_port=_free_port())
    server = ServerHarness(settings).start()
    _, driver_token = server.register_qpu("q1")
    _, token = server.create_user("alice@example.com", qpu_seconds=500)
    driver = _spawn_driver(server, driver_token, delay=0.4)
    jobs = [server.submit(token, bell_qasm, qpu="q1") for _ in range(6)]
    _until(lambda: _job(server, token, jobs[0].id).state != job_pb2.Job.STATE_PENDING, 10)
    server.stop()
    time.sleep(1.0)
    restarted = ServerHarness(settings).start()
    try:
        finished = [restarted.wait(token, j.id, timeout=60) for j in jobs]
        assert all(j.state == job_pb2.Job.STATE_COMPLETED for j in finished), [
            j.state for j in finished
        ]
        stub = job_service_pb2_grpc.JobServiceStub(restarted.channel())
        running = stub.ListJobs(
            job_service_pb2.ListJobsRequest(states=[job_pb2.Job.STATE_RUNNING]),
            metadata=restarted.auth(token),
        )
        assert running.total_size == 0
        charged = sum(j.charged_seconds for j in finished)
        assert abs(_balance(restarted, token) - (500 - charged)) < 1e-6
    finally:
        driver.kill()
        restarted.stop()
        if settings.database_url.startswith("postgresql"):
            from tests.support.harness import drop_postgres

            drop_postgres(settings.database_url)
