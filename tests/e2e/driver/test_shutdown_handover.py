"""SIGTERM mid-job hands the job over once (issue 11 item 10).

A real `qpi-driver` running a long job gets SIGTERM; its grace period (2 s) ends before the
job does, so it hands the job back. The server must not lease it to the stopping daemon
again: each such lease was handed back at once, until the stream closed, pushing the
attempt up to 4 with one SIGTERM. The attempt grows by one and the next daemon completes it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.driver.conftest import LaunchDriver
from tests.e2e.driver.test_worker_lifecycle import MANY_RUNS, MANY_RUNS_SHOTS
from tests.support.processes import DriverProcess, ServeProcess, wait_until


@pytest.mark.timeout(400)  # a server and two drivers start (and warm up) on a loaded box
def test_sigterm_mid_job_hands_the_job_to_another_driver_once(
    serve: ServeProcess, launch_driver: LaunchDriver, tmp_path: Path
) -> None:
    no_timeout = ("--job-timeout", "0")
    stopping = launch_driver(serve, executor="mock", num_qubits=16, extra_args=no_timeout)
    admin = serve.admin()
    qpu = admin.get_qpu(stopping.name)
    token = serve.create_user("handover@example.com", qpu_seconds=1e6)
    client = serve.user(token)
    job = client.submit_job(circuits=MANY_RUNS, shots=MANY_RUNS_SHOTS, qpu_target=qpu.name)
    running = wait_until(
        lambda: (j := client.get_job(job.id)).state == "running" and j, 60, "job running"
    )
    assert stopping.proc is not None
    stopping.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: not stopping.alive(), 60, "the stopped driver exited")
    handed_back = client.get_job(job.id)
    assert handed_back.state == "pending", handed_back.state
    assert handed_back.attempt == running.attempt, "re-leased to the stopping driver"
    other = DriverProcess(
        serve,
        admin.create_driver(qpu.id, "other").access_token,
        tmp_path / "other",
        name=qpu.name,
        extra_args=no_timeout,
    ).start()
    try:
        done = client.wait(job.id, timeout=90)
        assert done.state == "completed", done.error
        assert done.attempt == running.attempt + 1
    finally:
        other.terminate(grace=5)
