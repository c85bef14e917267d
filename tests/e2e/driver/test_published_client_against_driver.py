"""Compatibility: the published `qpi-client` 0.4.2 reads results produced by our real driver.

The client builds its Qiskit `Result` from each `circuit_results` entry's `header`; without
one, Bell counts came out as {'0': ..., '3'/'11': ...}. Our driver's entries carry
`memory_slots`, `creg_sizes` and `clbit_labels`, so the keys are zero-padded bitstrings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.driver.conftest import LaunchDriver
from tests.integration.gateway.test_published_client import client_python  # noqa: F401
from tests.support.processes import ServeProcess

SCRIPT = Path(__file__).parent / "published_client_counts.py"
SHOTS = 200


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_published_client_shows_zero_padded_bell_counts(
    own_server: ServeProcess,
    launch_driver: LaunchDriver,
    client_python: Path,  # noqa: F811 - the fixture imported above
) -> None:
    token = own_server.create_user("published-client@example.com")
    # The published client submits without qpu_target: this private server has one QPU.
    driver = launch_driver(
        own_server, executor="mock", num_qubits=2, extra_args=("--job-timeout", "300")
    )
    proc = subprocess.run(
        [str(client_python), str(SCRIPT), own_server.http_url, token, driver.name],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2, proc.stdout
    for line in lines:
        counts = json.loads(line)
        assert set(counts) <= {"00", "01", "10", "11"}, counts
        assert {"00", "11"} <= set(counts), counts
        assert counts.get("01", 0) == counts.get("10", 0) == 0, counts
        assert sum(counts.values()) == SHOTS, counts
