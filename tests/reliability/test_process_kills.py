"""SIGKILL of a driver and of the server (SQLite and PostgreSQL) in the middle of a run.

A killed driver's leases return to the queue and a new daemon finishes them; a killed
server comes back on the same database, its drivers reconnect by themselves, and an SDK
`wait()` that was blocked across the restart still returns the finished job (it used to
give up after about 6 s of reconnects while a restart takes 9-21 s).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from qpi.sdk.models import Job
from tests.reliability.conftest import LaunchDriver, StartServer
from tests.reliability.workload import (
    Tenant,
    assert_ended_exactly_once,
    new_tenant,
    submit_short,
    submit_slow,
    wait_state,
)


def _wait_in_background(tenant: Tenant, job_id: str, timeout: float) -> Future[Job]:
    """Runs `client.wait(job_id)` in a thread, as a user script blocked on a job would."""
    outcome: Future[Job] = Future()

    def run() -> None:
        try:
            outcome.set_result(tenant.client.wait(job_id, timeout=timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return outcome


def test_driver_sigkill_mid_job(start_server: StartServer, launch_driver: LaunchDriver) -> None:
    server = start_server()
    driver = launch_driver(server)
    tenant = new_tenant(server, "driver-kill@example.com")
    slow = submit_slow(tenant, driver.name)
    jobs = [slow, *submit_short(tenant, driver.name, 4)]
    wait_state(tenant, slow, "running")

    driver.kill()  # the daemon and its worker, like a machine crash
    wait_state(tenant, slow, "pending", timeout=30)
    launch_driver(server, name=driver.name, token=driver.token)

    finished = assert_ended_exactly_once(server, tenant, jobs)
    assert finished[slow].attempt == 2  # leased twice, accepted once


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_server_sigkill_mid_run(
    database: str, start_server: StartServer, launch_driver: LaunchDriver
) -> None:
    server = start_server(database)
    driver = launch_driver(server)
    tenant = new_tenant(server, f"server-kill-{database}@example.com")
    slow = submit_slow(tenant, driver.name)
    jobs = [slow, *submit_short(tenant, driver.name, 6)]
    wait_state(tenant, slow, "running")
    waiter = _wait_in_background(tenant, slow, timeout=120)

    server.kill()
    time.sleep(10)  # longer than the SDK used to keep reconnecting
    assert not waiter.done() or waiter.exception() is None, waiter.exception()
    server.restart()

    driver.wait_connected(timeout=60)  # by itself: the test never touches it
    done = waiter.result(timeout=120)
    assert done.state == "completed", done.error
    assert_ended_exactly_once(server, tenant, jobs)
    assert driver.alive(), driver.log()
