"""A result above the server's limits fails its job once (issue 11 item 4).

A real `qpi serve` with a small `--max-result-bytes` (its gRPC receive limit follows:
max(payload, result) x 2 + 1 MiB = 3 MiB) and a real `qpi-driver --executor mock` running
a meas_level 1 job whose IQ memory is ~9 MB, above both limits. Before the welcome
announced the limits, the driver's send broke the stream, and the job bounced between
running and pending forever.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.driver.conftest import LaunchDriver
from tests.e2e.driver.test_driver_against_server import BELL
from tests.support.processes import ServeProcess

MAX_RESULT_BYTES = 100_000
IQ_SHOTS = 100_000  # ~90 bytes of JSON per shot: ~9 MB, above the 3 MiB receive limit


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(
        tmp_path / "small", extra_args=("--max-result-bytes", str(MAX_RESULT_BYTES))
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_oversized_result_fails_the_job_once(
    small_server: ServeProcess, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(small_server, executor="mock")
    token = small_server.create_user("big@example.com", qpu_seconds=1e6)
    client = small_server.user(token)
    job = client.submit_job(circuits=[BELL], shots=IQ_SHOTS, meas_level=1, qpu_target=driver.name)
    done = client.wait(job.id, timeout=60)
    assert done.state == "failed", done.error
    assert done.attempt == 1
    assert f"limit of {MAX_RESULT_BYTES} bytes" in done.error
    # Nothing loops: the job stays failed, the driver serves the next job on one stream.
    time.sleep(2)
    assert client.get_job(job.id).attempt == 1
    small = client.submit_job(circuits=[BELL], shots=100, qpu_target=driver.name)
    assert client.wait(small.id, timeout=60).state == "completed"
    assert "stream to server lost" not in driver.log()
