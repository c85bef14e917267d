"""Starts this process's part in the cluster: its heartbeat and its bid for leadership."""

from __future__ import annotations

import asyncio
from typing import Any

from qpi.server.cluster.leadership import LeaderDuties, Leadership
from qpi.server.cluster.registry import ReplicaHeartbeat, ReplicaRegistry
from qpi.server.domain.clock import Clock
from qpi.server.drivers.hub import DriverHub
from qpi.server.services.database import Database
from qpi.server.store.database import is_sqlite
from qpi.server.store.leader_lock import AdvisoryLock, LeaderLock, SoleServerLock


def start_replica(
    db: Database, registry: ReplicaRegistry, hub: DriverHub, duties: LeaderDuties, clock: Clock
) -> tuple[Leadership, list[asyncio.Task[Any]]]:
    """Heartbeats `registry`'s replica and competes for leadership (the lock on PostgreSQL;
    a sole SQLite server always leads); the leader runs `duties` plus the dead-replica
    sweep. Returns the leadership and the background tasks to cancel at stop."""
    interval = registry.timing.heartbeat_interval
    lock: LeaderLock = (
        SoleServerLock()
        if is_sqlite(db.engine)
        else AdvisoryLock(db.engine, f"qpi-leader-{registry.replica_id}")
    )
    duties.loops.append(("dead-replica sweep", interval, lambda: db.run(registry.sweep_dead)))
    leadership = Leadership(lock, duties, clock, interval, registry.replica_id)
    leadership.on_change = lambda since: setattr(registry, "leader_since", since)
    beats = ReplicaHeartbeat(db, registry, hub.live_sessions, hub.evict)
    return leadership, [
        asyncio.create_task(beats.run()),
        asyncio.create_task(leadership.run()),
    ]
