"""11.6 with the real daemon: deleting a QPU ends its `qpi-driver`'s stream, clearly.

The server closes the driver's stream with NOT_FOUND / QPU_DELETED (the daemon logs why);
the registration is gone, so the daemon's reconnect is refused and it stops instead of
serving a QPU that no longer exists. The job it ran stays readable by its owner.
"""

from __future__ import annotations

from tests.e2e.driver.conftest import LaunchDriver
from tests.e2e.driver.test_driver_against_server import BELL
from tests.support.processes import ServeProcess, wait_until


def test_deleting_the_qpu_closes_the_daemons_stream(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, executor="mock")
    done = serve.wait(user_token, serve.submit(user_token, BELL, qpu=driver.name, shots=200).id)
    # Under load the mock's first job may time out (issue 11.2, cold start); either way
    # it ended and is history to keep.
    assert done.state in ("completed", "failed"), done
    serve.admin().delete_qpu(driver.name)
    wait_until(lambda: "was deleted" in driver.log(), 60, "the daemon to log why its stream ended")
    assert "QPU_DELETED" in driver.log() or "NOT_FOUND" in driver.log()
    wait_until(lambda: not driver.alive(), 120, "the daemon to stop (its token is gone)")
    assert driver.proc is not None
    assert driver.proc.returncode != 0
    kept = serve.user(user_token).get_job(done.id)
    assert (kept.state, kept.result, kept.error) == (done.state, done.result, done.error)
    assert kept.qpu_name == driver.name
