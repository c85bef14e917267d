"""The executor worker of a real `qpi-driver` against a real `qpi serve` (issue 11 item 2).

The worker warms its executor up before the driver goes online, so the first job is as
fast as any other and is not billed for imports; a cancelled or timed-out job is stopped
in place (the same warm worker serves the next job) and a timed-out job is billed the time
it actually ran.
"""

from __future__ import annotations

import re

import pytest

from qpi.sdk.models import Job
from tests.e2e.driver.conftest import LaunchDriver
from tests.e2e.driver.test_driver_against_server import BELL, wide_circuit
from tests.support.processes import DriverProcess, ServeProcess, wait_until

# Many short runs (~0.1 s each): the executor checks for a stop between runs.
MANY_RUNS = [wide_circuit(12, layers=10)] * 150
MANY_RUNS_SHOTS = 20_000

READY = re.compile(r"worker process (\d+) ready \(start #(\d+), warm-up ([0-9.]+) s\)")


@pytest.fixture(scope="module")
def rich_user(serve: ServeProcess) -> str:
    """A user whose balance covers the estimates of the long jobs below."""
    return serve.create_user("lifecycle@example.com", qpu_seconds=1e6)


def worker_starts(driver: DriverProcess) -> list[tuple[int, int, float]]:
    """(pid, start number, warm-up seconds) of every worker the daemon started."""
    text = driver.log_path.read_text(errors="replace")
    return [(int(p), int(n), float(w)) for p, n, w in READY.findall(text)]


def wait_state(serve: ServeProcess, token: str, job_id: str, state: str) -> Job:
    client = serve.user(token)
    found: Job = wait_until(
        lambda: (job := client.get_job(job_id)).state == state and job, 60, f"{job_id} {state}"
    )
    return found


def test_first_job_is_not_billed_the_warm_up(
    serve: ServeProcess, rich_user: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, executor="mock")
    starts = worker_starts(driver)
    assert len(starts) == 1, driver.log()
    warm_up = starts[0][2]
    assert warm_up > 0.2, f"no real warm-up measured: {starts}"
    job = serve.submit(rich_user, BELL, qpu=driver.name, shots=1000)
    done = serve.wait(rich_user, job.id)
    assert done.state == "completed", done.error
    assert done.attempt == 1
    # Today the first execute() imports xarray/pandas/qiskit passes: seconds, all billed.
    assert done.charged_seconds < warm_up / 4, (done.charged_seconds, warm_up)


def test_cancel_stops_the_job_in_the_same_worker(
    serve: ServeProcess, rich_user: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, executor="mock", num_qubits=16)
    client = serve.user(rich_user)
    worker_pid = worker_starts(driver)[0][0]
    long = client.submit_job(circuits=MANY_RUNS, shots=MANY_RUNS_SHOTS, qpu_target=driver.name)
    wait_state(serve, rich_user, long.id, "running")
    assert client.cancel_job(long.id).state == "cancelled"
    wait_until(lambda: f"job {long.id} stopped" in driver.log(), 60, "the job stopped in place")
    job = serve.submit(rich_user, BELL, qpu=driver.name, shots=100)
    assert serve.wait(rich_user, job.id).state == "completed"
    assert [pid for pid, _, _ in worker_starts(driver)] == [worker_pid], driver.log()
    assert worker_pid in driver.descendants()


def test_timed_out_job_is_billed_the_time_it_ran(
    serve: ServeProcess, rich_user: str, launch_driver: LaunchDriver
) -> None:
    timeout = 2.0
    driver = launch_driver(
        serve, executor="mock", num_qubits=16, extra_args=("--job-timeout", f"{timeout:g}")
    )
    client = serve.user(rich_user)
    long = client.submit_job(circuits=MANY_RUNS, shots=MANY_RUNS_SHOTS, qpu_target=driver.name)
    done = serve.wait(rich_user, long.id)
    assert done.state == "failed"
    assert "job timeout of 2 s" in done.error
    assert done.started is not None
    assert done.finished is not None
    on_server = (done.finished - done.started).total_seconds()
    # The running time counted by the driver: the limit, plus at most one late tick.
    assert timeout * 0.9 <= done.charged_seconds <= min(timeout + 1.5, on_server)
    # The job was stopped in place: the warm worker runs the next job.
    job = serve.submit(rich_user, BELL, qpu=driver.name, shots=100)
    assert serve.wait(rich_user, job.id).state == "completed"
    assert len(worker_starts(driver)) == 1, driver.log()
