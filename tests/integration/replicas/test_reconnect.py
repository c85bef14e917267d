"""The LISTEN connection comes back after its backend is terminated, and the replica
catches up on what it may have missed."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from qpi.server.cluster.relay import EventRelay
from qpi.server.store.notify import LISTENER_APPLICATION
from tests.integration.replicas.conftest import Cluster, make_cluster
from tests.integration.replicas.test_relay import BELL
from tests.support.harness import ServerHarness
from tests.support.tcp_proxy import TcpProxy


def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _relay(cluster: Cluster) -> EventRelay:
    relay = cluster.b.server.relay
    assert relay is not None
    return relay


def test_the_listener_reconnects_after_its_backend_is_killed(cluster: Cluster) -> None:
    driver = cluster.b.attach_mini_driver(cluster.driver_token)
    relay = _relay(cluster)
    assert relay.connections == 1
    with psycopg.connect(cluster.url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"{LISTENER_APPLICATION}:{relay.origin}",),
        ).fetchall()
    assert killed == [(True,)]
    _until(lambda: relay.connections == 2)
    job = cluster.a.submit(cluster.token, BELL, qpu=cluster.qpu_name)
    done = cluster.a.wait(cluster.token, job.id)
    assert done.state == done.STATE_COMPLETED
    assert [j for j, _ in driver.executed] == [job.id]


def test_a_job_submitted_during_bs_outage_runs_once_b_listens_again(
    replica_factory: Callable[..., ServerHarness], replica_db: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432).start()
    try:
        b_url = replica_db.replace("127.0.0.1:5432", proxy.address)
        cluster = make_cluster(replica_factory(), replica_factory(database_url=b_url))
        driver = cluster.b.attach_mini_driver(cluster.driver_token)
        relay = _relay(cluster)
        # B loses the database (silently, like a dead network path): the submit's wake-up
        # never reaches it, so only B's catch-up after reconnecting can dispatch the job.
        proxy.blackhole()
        job = cluster.a.submit(cluster.token, BELL, qpu=cluster.qpu_name)
        time.sleep(0.5)
        assert driver.executed == []
        proxy.restore()
        _until(lambda: relay.connections >= 2)
        done = cluster.a.wait(cluster.token, job.id)
        assert done.state == done.STATE_COMPLETED
        assert [j for j, _ in driver.executed] == [job.id]
    finally:
        proxy.stop()
