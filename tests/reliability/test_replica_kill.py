"""SIGKILL of the replica holding the drivers, with jobs in flight.

Two real `qpi serve` replicas share one PostgreSQL database and one CA; real `qpi-driver`
daemons (mock executor) reach them through a failover load balancer (a TCP proxy that
sends new connections to the first replica that accepts them, for both the HTTP bootstrap
and the gRPC stream). The replica holding every driver is SIGKILLed mid-run: the daemons
reconnect to the survivor (at once when they hold leases of the dead replica's streams,
else once its heartbeat expires), the survivor takes the leadership over, and every job
ends exactly once (one result, one charge), nothing left `running`.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.reliability.workload import (
    INITIAL_BALANCE,
    Tenant,
    assert_ended_exactly_once,
    submit_short,
    submit_slow,
    wait_state,
)
from tests.support.harness import drop_postgres, fresh_postgres_url
from tests.support.processes import DriverProcess, ServeProcess, wait_until
from tests.support.tcp_proxy import TcpProxy

CA_FILES = (".qpi.ca.pem", ".qpi.ca.key")
DRIVERS = 3
"""The last one stays idle: holding no lease, it may move only once A's heartbeat expired."""


class FailoverProxy(TcpProxy):
    """A load balancer with health checks reduced to its essence: each new connection
    goes to the first replica (in order) that accepts a TCP connection."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__("127.0.0.1", ports[0])
        self._ports = ports

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self._ports:
            try:
                _, probe = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            probe.close()
            self.target = ("127.0.0.1", port)
            break
        await super()._accept(reader, writer)


class Balanced:
    """What a driver daemon sees: one address (the balancers), whichever replica answers.

    Stands in for the `server` of DriverProcess: its bootstrap URL, pinned CA and the QPU
    status check (asked of the replica given)."""

    def __init__(self, http: FailoverProxy, replica: ServeProcess) -> None:
        self.http_url = f"http://{http.address}"
        self.ca_fingerprint = replica.ca_fingerprint
        self.replica = replica

    def qpu_status(self, name: str) -> str:
        return self.replica.qpu_status(name)


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_postgres_url()
    yield url
    drop_postgres(url)


def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement).fetchall()


def _replica_id(url: str, replica: ServeProcess) -> str:
    rows = _sql(url, f"SELECT id FROM replicas WHERE http_port = {replica.http_port}")  # noqa: S608
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_sigkill_of_the_replica_holding_the_drivers(tmp_path: Path, database: str) -> None:
    a = ServeProcess(tmp_path / "a", database_url=database)
    b = ServeProcess(tmp_path / "b", database_url=database)
    proxies: list[TcpProxy] = []
    drivers: list[DriverProcess] = []
    try:
        a.start()
        # The replicas share the CA drivers pin; each issues its own leaf from it.
        b.data_dir.mkdir(parents=True)
        for name in CA_FILES:
            shutil.copy2(a.data_dir / name, b.data_dir / name)
        b.start()
        assert b.ca_fingerprint == a.ca_fingerprint
        http = FailoverProxy([a.http_port, b.http_port]).start()
        grpc_lb = FailoverProxy([a.grpc_port, b.grpc_port]).start()
        proxies += [http, grpc_lb]

        balanced = Balanced(http, a)
        for i in range(DRIVERS):
            name = f"kill{i}"
            token = a.create_qpu(name, num_qubits=16)
            driver = DriverProcess(
                balanced,  # type: ignore[arg-type]
                token,
                tmp_path,
                name=name,
                extra_args=("--grpc-addr", grpc_lb.address, "--job-timeout", "120"),
            )
            drivers.append(driver)
            driver.start().wait_connected()
        a_id, b_id = _replica_id(database, a), _replica_id(database, b)
        assert {r for (r,) in _sql(database, "SELECT replica_id FROM driver_sessions")} == {a_id}

        token = a.create_user("replica-kill@example.com", qpu_seconds=INITIAL_BALANCE)
        on_a, on_b = Tenant("replica-kill", a.user(token)), Tenant("replica-kill", b.user(token))
        busy = drivers[:-1]
        slow = [submit_slow(on_a, d.name) for d in busy]
        jobs = [*slow, *(j for d in busy for j in submit_short(on_a, d.name, 5))]
        for job_id in slow:
            wait_state(on_a, job_id, "running")

        a.kill()

        # Every daemon moves to B: those holding leases at once, the others once A's
        # heartbeat has expired.
        wait_until(
            lambda: _sql(database, "SELECT replica_id FROM driver_sessions") == [(b_id,)] * DRIVERS,
            90,
            "every driver connected to the surviving replica",
        )
        finished = assert_ended_exactly_once(b, on_b, jobs, timeout=180)
        assert all(finished[j].attempt >= 1 for j in slow)
        # B leads now (it swept A), and nothing anywhere is left running.
        wait_until(
            lambda: (
                _sql(database, "SELECT id, leader_since IS NOT NULL FROM replicas")
                == [(b_id, True)]
            ),
            30,
            "B the only replica, and the leader",
        )
        assert _sql(database, "SELECT id FROM jobs WHERE state = 'running'") == []
        for driver in drivers:
            assert driver.alive(), driver.log()
    finally:
        for driver in drivers:
            driver.terminate(grace=5)
        for proxy in proxies:
            proxy.stop()
        a.stop(grace=5)
        b.stop(grace=5)
