"""A driver stopped with SIGSTOP (daemon and worker) and continued later must not fail its
job as timed out for the time it was stopped: the job timeout counts running time only."""

from __future__ import annotations

import signal
import time

from tests.reliability.conftest import LaunchDriver, StartServer
from tests.reliability.workload import new_tenant, submit_short, submit_slow, wait_state

# Room for the first job's warm-up in a fresh worker (seconds on a loaded machine).
JOB_TIMEOUT = 20.0
STOPPED = 22.0  # longer than the job timeout
# The server tolerates the stopped driver's silence (heartbeats and transport keepalive).
TIMERS = {"--heartbeat-timeout": "40s", "--job-timeout": "60s"}


def test_sigstop_does_not_count_towards_the_job_timeout(
    start_server: StartServer, launch_driver: LaunchDriver
) -> None:
    server = start_server(timers=TIMERS)
    driver = launch_driver(server, extra_args=("--job-timeout", f"{JOB_TIMEOUT:g}"))
    tenant = new_tenant(server, "suspend@example.com")
    # A first job pays the worker's warm-up, so the measured job is pure simulation.
    (warm_up,) = submit_short(tenant, driver.name, 1)
    assert tenant.client.wait(warm_up, timeout=120).state == "completed"

    slow = submit_slow(tenant, driver.name, circuits=6)  # a few seconds of running time
    wait_state(tenant, slow, "running")
    time.sleep(0.5)
    driver.signal_all(signal.SIGSTOP)
    try:
        time.sleep(STOPPED)
    finally:
        driver.signal_all(signal.SIGCONT)

    done = tenant.client.wait(slow, timeout=120)
    assert done.state == "completed", done.error
    assert done.attempt == 1  # the server kept the stopped driver's lease
    assert "exceeded the job timeout" not in driver.log()
    assert driver.alive()
