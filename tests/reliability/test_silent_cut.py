"""A silent network cut between a driver and the server (packets dropped, no FIN, no RST).

Both sides must notice within 15 s (the driver used to take 78 s, then hung ~20 s in every
TLS handshake) and the driver must reconnect promptly once the path is back; the jobs
queued meanwhile run, each exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.reliability.conftest import LaunchDriver, StartServer
from tests.reliability.workload import assert_ended_exactly_once, new_tenant, submit_short
from tests.support.processes import DriverProcess, wait_until
from tests.support.tcp_proxy import TcpProxy

# The server's defaults: detection must not rely on unusually short timers.
TIMERS = {"--heartbeat-interval": "2s", "--heartbeat-timeout": "10s", "--job-timeout": "20s"}
LOST = ("stream to server lost", "the server closed the stream", "cannot reach the server")
# Generous against the 15 s target on a loaded machine, far below the 78 s it took before.
DETECTION_BOUND = 25.0


def _log_size(driver: DriverProcess) -> int:
    return driver.log_path.stat().st_size


def _lost_since(driver: DriverProcess, offset: int) -> bool:
    with driver.log_path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return any(marker in text for marker in LOST)


def test_silent_cut_is_noticed_on_both_sides_and_healed(
    start_server: StartServer,
    launch_driver: LaunchDriver,
    proxy_factory: Callable[[int], TcpProxy],
) -> None:
    server = start_server(timers=TIMERS)
    proxy = proxy_factory(server.grpc_port)
    driver = launch_driver(server, extra_args=("--grpc-addr", proxy.address))
    tenant = new_tenant(server, "silent-cut@example.com")
    before = submit_short(tenant, driver.name, 3)
    for job_id in before:
        tenant.client.wait(job_id, timeout=120)

    offset = _log_size(driver)
    proxy.blackhole()
    cut_at = time.monotonic()
    during = submit_short(tenant, driver.name, 3)  # queued while the path is dead
    status = server.admin()
    seen_by_server = wait_until(
        lambda: time.monotonic() if server.qpu_status(driver.name) != "online" else None,
        60,
        "the server noticing the cut",
    )
    seen_by_driver = wait_until(
        lambda: time.monotonic() if _lost_since(driver, offset) else None,
        120,
        "the driver noticing the cut",
    )
    server_side, driver_side = seen_by_server - cut_at, seen_by_driver - cut_at
    proxy.restore()
    healed_at = time.monotonic()
    driver.wait_connected(timeout=60)
    reconnect = time.monotonic() - healed_at
    print(  # noqa: T201 - the figures the issue asks for
        f"[figure] silent cut noticed by the server after {server_side:.1f} s, "
        f"by the driver after {driver_side:.1f} s; reconnected {reconnect:.1f} s after the "
        "path came back"
    )
    assert status.get_qpu(driver.name).status == "online"

    assert server_side < DETECTION_BOUND, server_side
    assert driver_side < DETECTION_BOUND, driver_side
    assert reconnect < DETECTION_BOUND, reconnect
    assert_ended_exactly_once(server, tenant, [*before, *during])
    assert driver.alive(), driver.log()
