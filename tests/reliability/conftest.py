"""Fixtures for fault tests: real `qpi serve` and `qpi-driver` processes, a private
PostgreSQL cluster, a TCP proxy that can cut the path silently. Every process, cluster and
proxy is stopped by a finalizer whatever the test's outcome."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.harness import drop_postgres, fresh_postgres_url
from tests.support.pg_cluster import PgCluster
from tests.support.processes import DriverProcess, ServeProcess
from tests.support.tcp_proxy import TcpProxy

_names = itertools.count()

StartServer = Callable[..., ServeProcess]
LaunchDriver = Callable[..., DriverProcess]

# Each fault scenario runs real processes through an outage and waits for recovery; on a
# loaded 2-core machine that takes minutes, so the suite-wide 120 s budget is too tight.
FAULT_TEST_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and "reliability" in item.path.parts:
            item.add_marker(pytest.mark.timeout(FAULT_TEST_TIMEOUT))


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Starts `qpi serve` (TLS) on SQLite, the shared PostgreSQL ("postgres") or a URL."""
    servers: list[ServeProcess] = []
    databases: list[str] = []

    def start(
        database: str = "sqlite",
        *,
        timers: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> ServeProcess:
        url = ""
        if database == "postgres":
            url = fresh_postgres_url()
            databases.append(url)
        elif database != "sqlite":
            url = database
        server = ServeProcess(
            tmp_path / f"srv{len(servers)}", database_url=url, timers=timers, extra_args=extra_args
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(grace=5)
    for url in databases:
        drop_postgres(url)


@pytest.fixture
def launch_driver(tmp_path: Path) -> Iterator[LaunchDriver]:
    """Registers a QPU (unless `token` is given) and starts a connected mock driver."""
    started: list[DriverProcess] = []

    def launch(
        server: ServeProcess,
        *,
        name: str | None = None,
        token: str | None = None,
        extra_args: tuple[str, ...] = (),
        wait: bool = True,
    ) -> DriverProcess:
        name = name or f"rel_{next(_names)}"
        if token is None:
            token = server.create_qpu(name, num_qubits=16)
        # The first job of a fresh worker pays Qiskit's warm-up (seconds on a loaded
        # machine): the driver's own job timeout must not fire on it.
        args = ("--job-timeout", "120", *extra_args)
        driver = DriverProcess(server, token, tmp_path, name=name, extra_args=args)
        started.append(driver)
        driver.start()
        if wait:
            driver.wait_connected()
        return driver

    yield launch
    for driver in started:
        driver.terminate(grace=5)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    cluster = PgCluster().init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> str:
    """A fresh database on the private cluster."""
    return pg_cluster.create_database(f"qpi_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[int], TcpProxy]]:
    """Starts TCP proxies to local ports; all stopped after the test."""
    proxies: list[TcpProxy] = []

    def make(port: int) -> TcpProxy:
        proxy = TcpProxy("127.0.0.1", port).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
