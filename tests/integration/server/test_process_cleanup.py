"""Processes that stop, however they stop, leave no children behind.

A child that outlives its parent is re-parented to init and idles there for good: a Qiskit
pool worker costs ~120 MB, and every test run used to leave some.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from qpi.v1 import job_pb2
from tests.support.harness import ServerHarness
from tests.support.processes import descendants, pid_alive, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_sigkilled_mini_driver_leaves_no_pool_worker_behind(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    _, driver_token = qpi_server.register_qpu("q1")
    _, token = qpi_server.create_user("alice@example.com", qpu_seconds=500)
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/support/mini_driver.py")]
        + ["--target", qpi_server.grpc_target, "--token", driver_token],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    children: list[int] = []
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "READY"
        job = qpi_server.submit(token, bell_qasm, qpu="q1")
        # The job ran in the driver's process pool: a spawned worker and its resource tracker.
        assert qpi_server.wait(token, job.id).state == job_pb2.Job.STATE_COMPLETED
        children = descendants(driver.pid)
        assert children, "the mini driver started no pool worker"
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        wait_until(
            lambda: not [pid for pid in children if pid_alive(pid)],
            30,
            f"the killed driver's children {children} exiting",
        )
    finally:
        driver.kill()
        driver.wait(10)
        _kill(children)
