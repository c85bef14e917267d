"""Logs people can read: with real `qpi serve` and `qpi-driver` processes at the default
level, a job leaves exactly one INFO line from QPI and none from other libraries (qiskit's
pass manager printed 19 per mock job), and the server's start shows no alembic chatter."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.driver.conftest import LaunchDriver
from tests.support.processes import ServeProcess

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

# "2026-11-29 21:53:21,032 INFO [worker] qiskit.passmanager.base_tasks: Pass: ..."
RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d [\d:,]+ (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"(?:\[worker\] )?(?P<logger>[\w.]+): (?P<message>.*)$"
)


def records(path: Path) -> list[tuple[str, str, str]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        match = RECORD.match(line)
        if match:
            found.append((match["level"], match["logger"], match["message"]))
    return found


def third_party_info(found: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [
        r
        for r in found
        if r[0] in ("DEBUG", "INFO") and not (r[1] == "qpi" or r[1].startswith("qpi."))
    ]


def test_a_mock_job_logs_one_qpi_info_line_and_no_library_chatter(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, extra_args=("--job-timeout", "120s"))
    job = serve.submit(user_token, BELL, qpu=driver.name, shots=300)
    done = serve.wait(user_token, job.id, timeout=120)
    assert done.state == "completed", done.error
    driver.terminate(grace=10)

    found = records(driver.log_path)
    assert found, driver.log()
    about_job = [r for r in found if r[0] == "INFO" and job.id in r[2]]
    assert len(about_job) == 1, about_job
    level, logger, message = about_job[0]
    assert logger.startswith("qpi.driver")
    assert re.fullmatch(rf"job {job.id} attempt 1 completed in \d+\.\d\d s", message), message
    assert third_party_info(found) == [], third_party_info(found)[:5]


def test_server_start_logs_no_alembic_info(serve: ServeProcess) -> None:
    found = records(serve.log_path)
    assert any(r[1] == "qpi.server.app" and "serving gRPC" in r[2] for r in found), serve.log()
    assert not [r for r in found if r[1].startswith("alembic")], serve.log()
    assert third_party_info(found) == [], third_party_info(found)[:5]
