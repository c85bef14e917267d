"""Two replicas dispatching one QPU queue: candidates another replica is claiming are
skipped (FOR UPDATE SKIP LOCKED), and every job is leased exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from qpi.server.store.jobs import NewJob
from qpi.server.store.repositories import Repositories, sql_repositories
from qpi.v1 import job_pb2
from tests.integration.replicas.conftest import Cluster
from tests.integration.replicas.test_relay import BELL
from tests.support.harness import ServerHarness, migrated_engine

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def repos(tmp_path: Path) -> Iterator[Repositories]:
    with migrated_engine("postgres", tmp_path) as engine:
        yield sql_repositories(engine)


def _any_balance(balance: float, reserved: float, estimate: float, is_superuser: bool) -> bool:
    return True


def test_a_round_skips_the_job_another_round_is_claiming(repos: Repositories) -> None:
    user = repos.accounts.insert_user("a@example.com", "", "hash", 10.0).id
    qpu, _ = repos.qpus.insert_qpu(
        "q", enabled=True, num_qubits=2, coupling_map=[], native_gates=[], driver=None
    )
    stored = [
        repos.jobs.insert(
            user, None, NOW + timedelta(seconds=i), lambda o, p, q: NewJob(qpu.id, "{}", 0.0)
        )
        for i in range(2)
    ]
    assert stored[0] is not None
    assert stored[1] is not None
    first, second = stored[0][0], stored[1][0]
    locked, release = threading.Event(), threading.Event()

    def other_replica() -> None:  # holds a round open on the oldest job
        with repos.leases.dispatch_round():
            snapshot, _ = repos.leases.snapshot(qpu.id, NOW, _any_balance)
            assert [p.id for p in snapshot.pending] == [first.id]
            locked.set()
            release.wait(30)

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(other_replica)
        assert locked.wait(30)
        # Not blocked by the other round, and not handed the job it is claiming.
        with repos.leases.dispatch_round():
            snapshot, _ = repos.leases.snapshot(qpu.id, NOW, _any_balance)
            assert [p.id for p in snapshot.pending] == [second.id]
            claimed = repos.leases.claim(
                second.id, "d", "s", NOW, NOW + timedelta(minutes=1), _any_balance
            )
        assert claimed is not None
        assert claimed.state == "running"
        release.set()
        holder.result(30)
    # Outside a round nothing is locked or skipped: the first job is still the oldest.
    snapshot, _ = repos.leases.snapshot(qpu.id, NOW, _any_balance)
    assert [p.id for p in snapshot.pending] == [first.id]


def test_drivers_on_both_replicas_run_each_job_exactly_once(cluster: Cluster) -> None:
    second_token = cluster.add_driver("second")
    # Jobs that take a while keep each driver busy, so neither replica can take them all.
    on_a = cluster.a.attach_mini_driver(cluster.driver_token, name="on-a", delay=0.1)
    on_b = cluster.b.attach_mini_driver(second_token, name="on-b", delay=0.1)
    jobs = 40
    submitted: list[tuple[job_pb2.Job, ServerHarness]] = []
    for i in range(jobs):
        on, other = (cluster.a, cluster.b) if i % 2 else (cluster.b, cluster.a)
        submitted.append((on.submit(cluster.token, BELL, qpu=cluster.qpu_name, shots=10), other))
    for job, other in submitted:  # watched on the replica it was not submitted on
        done = other.wait(cluster.token, job.id)
        assert done.state == done.STATE_COMPLETED
        assert done.attempt == 1  # leased once, never requeued
    runs = Counter(job_id for job_id, _ in on_a.executed + on_b.executed)
    assert set(runs) == {job.id for job, _ in submitted}
    assert set(runs.values()) == {1}
    # Both replicas dispatched (the jobs did not all go through one of them).
    assert on_a.executed
    assert on_b.executed
