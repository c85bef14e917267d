"""Replica registry and driver-session directory, two replicas on one database, with an
injected clock deciding who is alive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qpi.server.cluster.registry import ReplicaHeartbeat, ReplicaRegistry
from qpi.server.domain.clock import FakeClock
from qpi.server.domain.replicas import ReplicaTiming, may_take_over
from qpi.server.drivers.session import DriverSession
from qpi.server.services.events import EventBus
from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.qpus import NewDriver, SqlQpuRepository
from qpi.server.store.replicas import SqlReplicaRepository

TIMING = ReplicaTiming(heartbeat_interval=1.0, timeout=5.0)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = create_db_engine(f"sqlite:///{tmp_path / 'r.db'}")
        migrate(self.engine)
        self.clock = FakeClock()
        self.qpus = SqlQpuRepository(self.engine)
        qpu, driver = self.qpus.insert_qpu(
            "fridge",
            enabled=True,
            num_qubits=2,
            coupling_map=[],
            native_gates=[],
            driver=NewDriver("d1", "mock", "python", "a" * 64),
        )
        assert driver is not None
        self.qpu_id, self.driver_id = qpu.id, driver.id
        self.second_driver = self.qpus.insert_driver(
            qpu.id, NewDriver("d2", "mock", "python", "b" * 64)
        ).id

    def replica(self) -> ReplicaRegistry:
        registry = ReplicaRegistry(
            SqlReplicaRepository(self.engine), self.clock, EventBus(), TIMING, sole_server=False
        )
        registry.join()
        return registry

    def session(self, driver_id: str) -> DriverSession:
        return DriverSession(driver_id, self.qpu_id, "d", "mock", "grpc")

    def status(self) -> str:
        qpu = self.qpus.find(self.qpu_id)
        assert qpu is not None
        return qpu.status

    def connect(self, registry: ReplicaRegistry, session: DriverSession) -> None:
        assert registry.claim(session, []) is None
        # What the hub does after recording a stream: derive the QPU's status.
        registry.refresh_status(self.qpu_id)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_new_replica_keeps_a_live_replicas_qpu_online(world: World) -> None:
    a = world.replica()
    world.connect(a, world.session(world.driver_id))
    assert world.status() == "online"
    world.clock.advance(3)
    a.heartbeat()
    world.replica()  # starting B clears nothing A holds
    assert world.status() == "online"
    assert a.executors(world.qpu_id) == (1, "mock")


def test_the_qpu_stays_online_while_any_replica_holds_a_driver(world: World) -> None:
    a, b = world.replica(), world.replica()
    on_a = world.session(world.driver_id)
    world.connect(a, on_a)
    world.connect(b, world.session(world.second_driver))
    assert a.release(world.driver_id, on_a.session_id)
    a.refresh_status(world.qpu_id)
    assert world.status() == "online"
    assert a.executors(world.qpu_id) == (1, "mock")
    assert b.executors(world.qpu_id) == (1, "mock")


def test_a_driver_held_by_a_live_replica_is_refused_until_that_replica_expires(
    world: World,
) -> None:
    a, b = world.replica(), world.replica()
    world.connect(a, world.session(world.driver_id))
    newcomer = world.session(world.driver_id)
    holder = b.claim(newcomer, [])
    assert holder is not None
    assert holder.replica_id == a.replica_id
    world.clock.advance(TIMING.timeout - 0.5)
    b.heartbeat()
    assert b.claim(newcomer, []) is not None
    world.clock.advance(1.0)  # A missed every heartbeat for longer than the timeout
    b.heartbeat()
    assert b.claim(newcomer, []) is None
    assert b.held_here() == {world.driver_id: newcomer.session_id}
    # A's stale stream ends later: it must not erase B's record.
    assert not a.release(world.driver_id, "old-session")
    assert b.executors(world.qpu_id) == (1, "mock")


def test_the_leaders_sweep_removes_dead_replicas_and_takes_their_qpus_offline(
    world: World,
) -> None:
    a, b = world.replica(), world.replica()
    world.connect(a, world.session(world.driver_id))
    world.clock.advance(2)
    assert b.sweep_dead() == []  # A is alive
    assert world.status() == "online"
    world.clock.advance(TIMING.timeout)
    b.heartbeat()
    assert b.sweep_dead() == [a.replica_id]
    assert world.status() == "offline"
    assert [r.id for r in b.live_replicas()] == [b.replica_id]
    assert b.executors(world.qpu_id) == (0, "")


def test_a_leader_whose_own_heartbeat_ran_late_never_sweeps_itself(world: World) -> None:
    leader = world.replica()
    session = world.session(world.driver_id)
    world.connect(leader, session)
    world.clock.advance(TIMING.timeout + 1)  # its heartbeat task was starved meanwhile
    assert leader.sweep_dead() == []
    assert world.status() == "online"
    assert [r.id for r in leader.live_replicas()] == [leader.replica_id]
    assert leader.held_here() == {world.driver_id: session.session_id}
    assert leader.executors(world.qpu_id) == (1, "mock")


def test_a_replica_swept_while_alive_registers_again_and_reclaims_its_streams(
    world: World,
) -> None:
    a, b = world.replica(), world.replica()
    session = world.session(world.driver_id)
    world.connect(a, session)
    world.clock.advance(TIMING.timeout + 1)
    b.heartbeat()
    b.sweep_dead()
    assert a.held_here() == {}
    assert not a.heartbeat()  # its row was gone: registered again
    assert a.reclaim(session)
    assert a.held_here() == {world.driver_id: session.session_id}
    # Once recorded elsewhere, a stream can no longer be reclaimed.
    assert not b.reclaim(world.session(world.driver_id))


def test_take_over_rule() -> None:
    clock = FakeClock()
    now = clock.now()
    later = clock.advance(1)
    assert may_take_over("me", now, "me", later, False)  # this replica's own record
    assert not may_take_over("other", later, "me", now, False)  # a live holder
    assert may_take_over("other", now, "me", later, False)  # a dead holder
    assert may_take_over("other", later, "me", now, True)  # the same daemon came back


class InlineDb:
    """Runs use cases in the caller's thread (the registry's store is SQLite here)."""

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


async def test_a_heartbeat_reclaims_swept_streams_and_ends_streams_taken_elsewhere(
    world: World,
) -> None:
    a, b = world.replica(), world.replica()
    kept, moved = world.session(world.driver_id), world.session(world.second_driver)
    world.connect(a, kept)
    world.connect(a, moved)
    evicted: list[str] = []
    beats = ReplicaHeartbeat(
        InlineDb(),  # type: ignore[arg-type]
        a,
        lambda: [kept, moved],
        lambda session, why: evicted.append(session.driver_id),
    )
    # A stalls past its timeout: B sweeps it, and the second driver reconnects to B.
    world.clock.advance(TIMING.timeout + 1)
    b.heartbeat()
    b.sweep_dead()
    assert world.status() == "offline"
    assert b.claim(world.session(world.second_driver), []) is None
    await beats.beat()
    assert evicted == [world.second_driver]
    assert a.held_here() == {world.driver_id: kept.session_id}
    assert world.status() == "online"
