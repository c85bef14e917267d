"""The daemon's link to the server with real `qpi-driver` and `qpi serve` processes: a
disabled driver waits and comes back, bad credentials stop it with a clear message, and two
daemons started with one token never take the stream from each other.

Fixtures (`serve`, `user_token`, `launch_driver`) live in conftest.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.driver.conftest import LaunchDriver
from tests.support.processes import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DriverProcess,
    ServeProcess,
    wait_until,
)

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

# Generous bounds for a loaded shared machine; the measured figures are printed.
REATTACH_BOUND = 10.0
# The first job pays the executor's imports; on a loaded machine that can pass 10 s.
PATIENT = ("--job-timeout", "120s")


class Rest:
    """The operator's REST calls (the dashboard's), as an administrator."""

    def __init__(self, server: ServeProcess) -> None:
        self.url = server.http_url
        self.http = httpx.Client(timeout=30)
        answer = self.http.post(
            f"{self.url}/api/collections/_superusers/auth-with-password",
            json={"identity": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        )
        assert answer.status_code == 200, answer.text
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def driver_of(self, server: ServeProcess, qpu_name: str) -> dict[str, Any]:
        qpu_id = server.admin().get_qpu(qpu_name).id
        answer = self.http.get(
            f"{self.url}/api/collections/drivers/records",
            params={"perPage": 500},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text
        (driver,) = [d for d in answer.json()["items"] if d["qpu"] == qpu_id]
        return dict(driver)

    def toggle(self, driver_id: str, enabled: bool) -> None:
        answer = self.http.post(
            f"{self.url}/api/op/drivers/toggle",
            json={"id": driver_id, "enabled": enabled},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text


def _full_log(driver: DriverProcess) -> str:
    return driver.log_path.read_text(errors="replace")


def _wait_exit(driver: DriverProcess, timeout: float = 60) -> int:
    assert driver.proc is not None
    wait_until(lambda: driver.proc is not None and driver.proc.poll() is not None, timeout,
               f"driver {driver.name} exiting")  # fmt: skip
    assert driver.proc.returncode is not None
    return driver.proc.returncode


def test_disabled_driver_stays_up_and_reattaches_after_enable(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, extra_args=PATIENT)
    rest = Rest(serve)
    record = rest.driver_of(serve, driver.name)

    rest.toggle(record["id"], False)
    wait_until(lambda: serve.qpu_status(driver.name) != "online", 30, "QPU offline")
    # The daemon is told why, and keeps waiting: several retry rounds pass.
    wait_until(lambda: "disabled by an administrator" in _full_log(driver), 30,
               "the daemon logging that it is disabled")  # fmt: skip
    time.sleep(8)
    assert driver.alive(), driver.log()
    log = _full_log(driver)
    assert "CRITICAL" not in log, log
    assert serve.qpu_status(driver.name) != "online"

    enabled_at = time.monotonic()
    rest.toggle(record["id"], True)
    wait_until(lambda: serve.qpu_status(driver.name) == "online", 60, "re-attached")
    reattach = time.monotonic() - enabled_at
    print(f"[figure] re-attached {reattach:.2f} s after the driver was enabled again")  # noqa: T201
    assert reattach < REATTACH_BOUND, reattach

    job = serve.submit(user_token, BELL, qpu=driver.name, shots=200)
    done = serve.wait(user_token, job.id, timeout=120)
    assert done.state == "completed", done.error
    assert driver.alive()


def test_wrong_token_stops_the_daemon_with_a_clear_message(
    serve: ServeProcess, tmp_path: Path
) -> None:
    token = serve.create_qpu("e2e_wrong_token")
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    driver = DriverProcess(serve, wrong, tmp_path, name="e2e_wrong_token").start()
    try:
        code = _wait_exit(driver)
        log = _full_log(driver)
        assert code == 2, log
        assert "CRITICAL" in log
        assert "UNAUTHENTICATED" in log
        assert "access token" in log
    finally:
        driver.terminate(grace=2)


def test_wrong_ca_fingerprint_stops_the_daemon_with_a_clear_message(
    serve: ServeProcess, tmp_path: Path
) -> None:
    token = serve.create_qpu("e2e_wrong_pin")
    driver = DriverProcess(
        serve, token, tmp_path, name="e2e_wrong_pin", fingerprint="ab" * 32
    ).start()
    try:
        code = _wait_exit(driver)
        log = _full_log(driver)
        assert code == 2, log
        assert "CRITICAL" in log
        assert f"expected {'ab' * 32}" in log
    finally:
        driver.terminate(grace=2)


def _connects(server: ServeProcess, driver_id: str) -> int:
    text = server.log_path.read_text(errors="replace")
    return sum(
        1 for line in text.splitlines() if f"driver {driver_id} (" in line and "connected" in line
    )


@pytest.mark.timeout(300)
def test_two_daemons_with_one_token_never_livelock(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver, tmp_path: Path
) -> None:
    first = launch_driver(serve, extra_args=PATIENT)
    driver_id = Rest(serve).driver_of(serve, first.name)["id"]
    connects = _connects(serve, driver_id)
    second = DriverProcess(
        serve, first.token, tmp_path / "second", name=first.name, extra_args=PATIENT
    ).start()
    try:
        wait_until(lambda: "already connected with this access token" in _full_log(second), 60,
                   "the second daemon being refused")  # fmt: skip
        # Several of the second daemon's retry rounds: the first keeps its stream.
        job = serve.submit(user_token, BELL, qpu=first.name, shots=200)
        done = serve.wait(user_token, job.id, timeout=120)
        time.sleep(6)
        assert done.state == "completed", done.error
        assert done.attempt == 1, "the job was requeued"
        assert _connects(serve, driver_id) == connects, serve.log()
        assert "the server closed the stream" not in _full_log(first)
        assert first.alive()
        assert second.alive()
        assert serve.user(user_token).get_job(job.id).attempt == 1

        # The standby takes over once the first daemon is gone.
        stopped_at = time.monotonic()
        first.terminate(grace=5)
        wait_until(lambda: _connects(serve, driver_id) == connects + 1, 60,
                   "the standby daemon attaching")  # fmt: skip
        takeover = time.monotonic() - stopped_at
        print(f"[figure] standby daemon attached {takeover:.2f} s after the first stopped")  # noqa: T201
        wait_until(lambda: serve.qpu_status(first.name) == "online", 30, "QPU online again")
        again = serve.submit(user_token, BELL, qpu=first.name, shots=200)
        assert serve.wait(user_token, again.id, timeout=120).state == "completed"
    finally:
        second.terminate(grace=5)
