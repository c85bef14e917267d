"""Two replicas on one PostgreSQL database (always, whatever QPI_TEST_DATABASE says): QPU
status is the union of both replicas' drivers, a driver token is refused on one replica
while the other holds it, and background work fails over to the surviving replica."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import job_pb2, qpu_pb2, qpu_service_pb2, qpu_service_pb2_grpc
from tests.integration.server.test_driver_duplicates import _details
from tests.support.harness import ServerHarness, drop_postgres, fresh_postgres_url, make_settings
from tests.support.processes import wait_until
from tests.support.raw_stream import RawStream

ONLINE, OFFLINE = qpu_pb2.Qpu.STATUS_ONLINE, qpu_pb2.Qpu.STATUS_OFFLINE
StartReplica = Callable[[], ServerHarness]


class Cluster:
    """Replicas started on one throwaway database, stopped (once) at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = fresh_postgres_url()
        self._tmp = tmp_path
        self.replicas: list[ServerHarness] = []
        self._stopped: set[int] = set()

    def start(self) -> ServerHarness:
        settings = make_settings(
            self._tmp / f"replica{len(self.replicas)}",
            database_url=self.url,
            # Room for a replica's event loop to stall on a loaded machine before the
            # others take it for dead.
            heartbeat_timeout=5.0,
        )
        replica = ServerHarness(settings).start()
        # Each start upserts the administrator, which ends the others' admin sessions.
        for other in self.replicas:
            if id(other) not in self._stopped:
                other.admin_token = other.login(other.admin_email, other.admin_password)
        self.replicas.append(replica)
        return replica

    def stop(self, replica: ServerHarness) -> None:
        if id(replica) not in self._stopped:
            self._stopped.add(id(replica))
            replica.stop()

    def sql(self, statement: str, *args: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(statement, args)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        for replica in self.replicas:
            self.stop(replica)
        drop_postgres(self.url)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    yield made
    made.close()


def _qpus(replica: ServerHarness) -> qpu_service_pb2_grpc.QpuServiceStub:
    return qpu_service_pb2_grpc.QpuServiceStub(replica.channel())


def _status(replica: ServerHarness, qpu_id: str) -> int:
    request = qpu_service_pb2.GetQpuRequest(id=qpu_id)
    return int(
        _qpus(replica).GetQpu(request, metadata=replica.auth(replica.admin_token)).qpu.status
    )


def _driver_status(replica: ServerHarness, qpu_id: str) -> dict[str, int]:
    request = qpu_service_pb2.ListDriversRequest(qpu_id=qpu_id)
    drivers = _qpus(replica).ListDrivers(request, metadata=replica.auth(replica.admin_token))
    return {d.name: int(d.status) for d in drivers.drivers}


def _second_driver(replica: ServerHarness, qpu_id: str) -> str:
    created = _qpus(replica).CreateDriver(
        qpu_service_pb2.CreateDriverRequest(
            driver=qpu_pb2.Driver(qpu_id=qpu_id, name="second", kind="mock")
        ),
        metadata=replica.auth(replica.admin_token),
    )
    return str(created.access_token)


def test_qpu_status_is_the_union_of_both_replicas_drivers(cluster: Cluster) -> None:
    a = cluster.start()
    qpu_id, first_token = a.register_qpu("shared")
    second_token = _second_driver(a, qpu_id)
    on_a = a.attach_mini_driver(first_token, name="first")
    wait_until(lambda: _status(a, qpu_id) == ONLINE, 20, "QPU online through replica A")

    b = cluster.start()
    # Starting B did not take A's live QPU offline.
    assert _status(b, qpu_id) == ONLINE
    b.attach_mini_driver(second_token, name="second")
    wait_until(
        lambda: _driver_status(a, qpu_id) == {"first": 2, "second": 2}, 20, "both drivers online"
    )

    on_a.stop()
    a.drivers.remove(on_a)
    wait_until(lambda: _driver_status(b, qpu_id)["first"] == 1, 20, "A's driver offline")
    # B still holds a driver: the QPU stays online, seen from either replica.
    assert _status(a, qpu_id) == ONLINE
    assert _status(b, qpu_id) == ONLINE

    for driver in b.drivers:
        driver.stop()
    b.drivers.clear()
    wait_until(lambda: _status(a, qpu_id) == OFFLINE, 20, "QPU offline without drivers")


def test_a_driver_connected_to_one_replica_is_refused_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    _, token = a.register_qpu("dup")
    first = RawStream(a, token, [])
    first.next("welcome")
    with pytest.raises(grpc.RpcError) as refused:
        RawStream(b, token, []).next("welcome")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _details(refused.value)[0] == "DRIVER_ALREADY_CONNECTED"

    # Once A's stream ends, the token is free on B.
    first.close()

    def welcomed_on_b() -> bool:
        stream = RawStream(b, token, [])
        stream.next("welcome")
        stream.close()
        return True

    wait_until(welcomed_on_b, 20, "the driver accepted on B")


def test_a_daemon_back_through_another_replica_with_its_leases_takes_over_at_once(
    cluster: Cluster, bell_qasm: str
) -> None:
    a, b = cluster.start(), cluster.start()
    _, token = a.register_qpu("moved")
    _, user = a.create_user("moved@example.com")
    first = RawStream(a, token, [])
    first.next("welcome")
    job = a.submit(user, bell_qasm, qpu="moved")
    assignment = first.next("job_assignment").job_assignment
    lease = (assignment.job_id, assignment.attempt)

    # A still holds a live stream of this driver, but the newcomer on B holds its lease:
    # the same daemon, whose old connection A has not seen die yet.
    second = RawStream(b, token, [lease])
    welcome = second.next("welcome").welcome
    assert [(h.job_id, h.attempt) for h in welcome.resumed_jobs] == [lease]
    # A ends its copy of the stream (its record moved to B) without requeueing the lease.
    with pytest.raises(AssertionError, match="stream ended"):
        first.next("never sent")
    assert cluster.sql("SELECT state, attempt FROM jobs WHERE id = %s", job.id) == [
        ("running", lease[1])
    ]
    result = {
        "shots": 100,
        "success": True,
        "circuit_results": [{"counts": {"00": 100}, "shots": 100}],
    }
    second.out.put(
        pb.ConnectRequest(
            job_result=pb.JobResult(
                job_id=lease[0],
                attempt=lease[1],
                result_json=json.dumps(result),
                execution_seconds=0.1,
            )
        )
    )
    assert second.next("result_ack").result_ack.accepted
    done = b.wait(user, job.id)
    assert done.state == job_pb2.Job.STATE_COMPLETED
    assert done.attempt == lease[1]
    second.close()
    first.close()


def test_background_work_fails_over_to_the_surviving_replica(cluster: Cluster) -> None:
    a = cluster.start()
    wait_until(lambda: a.server.leadership and a.server.leadership.is_leader, 20, "A leads")
    b = cluster.start()
    assert b.server.leadership is not None
    assert b.server.registry is not None
    assert a.server.registry is not None
    # A holds the lock: B's attempts fail, and the registry shows A as the leader.
    wait_until(
        lambda: (
            cluster.sql("SELECT id FROM replicas WHERE leader_since IS NOT NULL")
            == [(a.server.registry.replica_id,)]
        ),  # type: ignore[union-attr]
        20,
        "A recorded as the leader",
    )
    assert not b.server.leadership.is_leader

    cluster.stop(a)
    wait_until(lambda: b.server.leadership.is_leader, 20, "B leads")  # type: ignore[union-attr]
    assert cluster.sql("SELECT id FROM replicas") == [(b.server.registry.replica_id,)]

    # Stale-lease recovery now runs on B: a running job whose lease expired returns to
    # the queue (its driver vanished without a trace).
    qpu_id, _ = b.register_qpu("stale")
    _, user_token = b.create_user("stale@example.com")
    job = b.submit(user_token, "OPENQASM 2.0; qreg q[1]; creg c[1]; measure q -> c;", qpu="stale")
    expired = datetime.now(UTC) - timedelta(minutes=1)
    cluster.sql(
        "UPDATE jobs SET state = 'running', attempt = 1, lease_driver_id = 'ghost',"
        " lease_expires_at = %s WHERE id = %s",
        expired,
        job.id,
    )
    wait_until(
        lambda: (
            cluster.sql("SELECT state, lease_driver_id FROM jobs WHERE id = %s", job.id)
            == [("pending", None)]
        ),
        30,
        "the stale lease requeued by B",
    )
    assert qpu_id
