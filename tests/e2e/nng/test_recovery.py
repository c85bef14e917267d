"""Faults with the published daemon: it dies mid-job, our server restarts or is SIGKILLed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.nng.conftest import PORT_BLOCK, NngServer, Registered
from tests.e2e.nng.peers import PublishedDriver, listening
from tests.support.processes import wait_until

pytestmark = [pytest.mark.timeout(900)]

# Eight 6-qubit circuits of 1500 shots: seconds of work for the mock executor (its result
# building costs about half a millisecond per shot), long enough to
# interrupt reliably, short enough to finish on a loaded machine.
_WIDE = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[6];\ncreg c[6];\nh q;\nmeasure q -> c;\n'
_LONG_CIRCUITS = 8
_LONG_SHOTS = 1500
_SMALL = _WIDE.replace("[6]", "[2]")


def _submit_long(server: NngServer, token: str, reg: Registered) -> str:
    job = server.process.user(token).submit_job(
        circuits=[_WIDE] * _LONG_CIRCUITS, shots=_LONG_SHOTS, qpu_target=reg.qpu_id
    )
    return str(job.id)


def _wait_executing(server: NngServer, token: str, job_id: str, driver: PublishedDriver) -> None:
    """The job is leased and the daemon's worker is running it."""
    client = server.process.user(token)
    states: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        driver.check_alive()
        try:
            state = client.get_job(job_id).state
        except Exception as exc:  # noqa: BLE001 - a busy server's hiccup: ask again
            states.append(f"unread ({exc!r:.200})")
            time.sleep(0.2)
            continue
        states.append(state)
        if state == "running" and f"executing job {job_id}" in driver.full_log():
            return
        if state not in ("pending", "running"):
            break  # ended before it was seen running: waiting longer cannot help
        time.sleep(0.2)
    raise AssertionError(
        f"job {job_id} never seen executing on the driver; states: {sorted(set(states))}"
        f"\n--- driver ---\n{driver.log()}\n--- server ---\n{server.process.log()}"
    )


def _assert_long_result(job: object) -> None:
    result = job.result  # type: ignore[attr-defined]
    assert result is not None
    assert len(result["circuit_results"]) == _LONG_CIRCUITS
    for circuit in result["circuit_results"]:
        assert sum(circuit["counts"].values()) == _LONG_SHOTS


def _listening_ports(server: NngServer) -> set[int]:
    return {p for p in range(server.port_start, server.port_start + PORT_BLOCK) if listening(p)}


def _sigkill(server: NngServer) -> None:
    proc = server.process.proc
    assert proc is not None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def test_killed_driver_returns_its_job_to_pending_and_it_completes_once(
    shared_server: NngServer, published_042: Path
) -> None:
    server = shared_server
    reg = server.register("nng-crash", num_qubits=8)
    token = server.user_token("crash@example.com")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    job_id = _submit_long(server, token, reg)
    _wait_executing(server, token, job_id, driver)

    driver.kill()  # daemon and worker, as a crash would
    client = server.process.user(token)
    wait_until(lambda: client.get_job(job_id).state == "pending", 30, "job back to pending")
    # The hub requeues first, then marks the driver and its QPU offline.
    wait_until(lambda: server.qpu(reg.qpu_id)["status"] == "offline", 30, "QPU offline")

    again = server.driver(published_042, "0.4.2", reg, name="nng_crash_again").start()
    done = client.wait(job_id, timeout=180)
    assert done.state == "completed", (done.error, again.log())
    assert done.attempt == 2  # leased twice, accepted once
    _assert_long_result(done)


def test_still_running_driver_resumes_after_a_server_restart(
    nng_server: NngServer, published_042: Path
) -> None:
    server = nng_server
    reg = server.register("nng-restart", num_qubits=8)
    token = server.user_token("restart@example.com")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    ports = _listening_ports(server)
    assert len(ports) == 2

    assert server.process.stop() == 0
    assert not _listening_ports(server)
    server.process.restart(timeout=120)
    assert _listening_ports(server) == ports  # restored before any driver spoke

    server.wait_online(reg, driver)  # redialled by itself: the daemon never re-handshakes
    job = server.process.submit(token, _SMALL, qpu=reg.qpu_id, shots=300)
    done = server.process.wait(token, job.id, timeout=120)
    assert done.state == "completed", (done.error, driver.log())
    assert sum(done.result["circuit_results"][0]["counts"].values()) == 300  # type: ignore[index]


@pytest.fixture
def patient_nng_server(tmp_path: Path) -> Iterator[NngServer]:
    """`nng_server` with lease timers that a loaded machine cannot outrun between the
    restart and the daemon's redial (the default 5 s job timeout could requeue the lease
    first, and the test is about resuming it, not about timing out)."""
    server = NngServer(
        tmp_path, timers={"--heartbeat-timeout": "15s", "--job-timeout": "30s"}
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_sigkilled_server_restores_listeners_and_the_job_completes_once(
    patient_nng_server: NngServer, published_042: Path
) -> None:
    server = patient_nng_server
    reg = server.register("nng-sigkill", num_qubits=8)
    token = server.user_token("sigkill@example.com")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    ports = _listening_ports(server)
    job_id = _submit_long(server, token, reg)
    _wait_executing(server, token, job_id, driver)

    _sigkill(server)
    server.process.restart(timeout=120)
    assert _listening_ports(server) == ports
    assert driver.alive()

    done = server.process.wait(token, job_id, timeout=180)
    assert done.state == "completed", (done.error, driver.log(), server.process.log())
    assert done.attempt == 1  # resumed where it ran, not run again
    _assert_long_result(done)
    server.wait_online(reg, driver)
    follow_up = server.process.submit(token, _SMALL, qpu=reg.qpu_id, shots=100)
    assert server.process.wait(token, follow_up.id, timeout=120).state == "completed"


def test_stale_lease_of_a_vanished_driver_returns_to_pending(
    nng_server: NngServer, published_042: Path
) -> None:
    """§12.9 as QPI allows it (job states change only through the scheduler): a job left
    running by a driver that never comes back after a server crash is requeued by the
    recovery sweep, and a new daemon completes it."""
    server = nng_server
    reg = server.register("nng-stale", num_qubits=8)
    token = server.user_token("stale@example.com")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    job_id = _submit_long(server, token, reg)
    _wait_executing(server, token, job_id, driver)

    _sigkill(server)
    driver.kill()
    server.process.restart(timeout=120)
    client = server.process.user(token)
    wait_until(lambda: client.get_job(job_id).state == "pending", 35, "stale job requeued")

    replacement = server.driver(published_042, "0.4.2", reg, name="nng_stale_2").start()
    done = client.wait(job_id, timeout=180)
    assert done.state == "completed", (done.error, replacement.log())
    _assert_long_result(done)


def test_cancelled_job_keeps_the_driver_busy_until_it_ends(
    shared_server: NngServer, published_042: Path
) -> None:
    """No cancel message exists: the job is cancelled at once, the daemon finishes it, its
    result is discarded, and the next job is dispatched only then (never two in flight)."""
    server = shared_server
    reg = server.register("nng-cancel", num_qubits=8)
    token = server.user_token("cancel@example.com")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    long_id = _submit_long(server, token, reg)
    _wait_executing(server, token, long_id, driver)
    client = server.process.user(token)
    client.cancel_job(long_id)
    assert client.get_job(long_id).state == "cancelled"
    follow_up = server.submit_rest(token, _SMALL, reg.qpu_id, shots=100)

    finished = server.wait_job_rest(token, follow_up, timeout=180)
    assert finished["status"] == "completed"
    log = driver.full_log()
    assert f"completed job {long_id}" in log
    # The daemon ran the cancelled job to its end before it ever saw the next one.
    assert log.index(f"completed job {long_id}") < log.index(f"executing job {follow_up}")
    cancelled = client.get_job(long_id)
    assert cancelled.state == "cancelled"
    assert cancelled.result is None
    assert f"finished cancelled job {long_id}; result discarded" in (
        server.process.log_path.read_text()
    )
