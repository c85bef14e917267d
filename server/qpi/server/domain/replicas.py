"""Replicas of one QPI deployment and the driver sessions they hold: records and rules.

Several `qpi serve` processes (replicas) may share one PostgreSQL database. Each one
heartbeats its row; a replica whose row has not been renewed for the replica timeout is
dead, and whatever it held (driver sessions, leadership) may be taken over. Clocks of the
replicas must agree (NTP), as job leases already require.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Replica:
    """One `qpi serve` process as the others see it."""

    id: str
    host: str
    grpc_port: int
    http_port: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    leader_since: datetime | None = None


@dataclass(frozen=True)
class SessionRecord:
    """The live stream of one driver, held by one replica."""

    driver_id: str
    session_id: str
    replica_id: str
    qpu_id: str
    executes: bool
    executor: str
    host: str


@dataclass(frozen=True)
class SessionHolder:
    """The live replica that holds a driver's stream, when a newcomer must be refused."""

    replica_id: str
    replica_host: str
    driver_host: str


@dataclass(frozen=True)
class ReplicaTiming:
    """How often a replica heartbeats and how long its silence may last."""

    heartbeat_interval: float
    timeout: float

    def expiry(self, now: datetime) -> datetime:
        """When a replica heartbeating at `now` is dead unless it heartbeats again."""
        return now + timedelta(seconds=self.timeout)


def is_live(expires_at: datetime, now: datetime) -> bool:
    """Whether a replica whose row expires at `expires_at` is alive at `now`."""
    return expires_at >= now


def may_take_over(
    holder_replica: str,
    holder_expires: datetime,
    me: str,
    now: datetime,
    newcomer_resumes_holder_leases: bool,
) -> bool:
    """Whether a newcomer on replica `me` may replace a driver's recorded session.

    Yes when the session is this replica's own (the hub already judged it), when its
    replica is dead, or when the newcomer holds that session's leases (the same daemon
    back through another replica before the first noticed its stream died). Otherwise a
    live replica serves the driver: the newcomer is another process with the same token.
    """
    return (
        holder_replica == me or not is_live(holder_expires, now) or newcomer_resumes_holder_leases
    )
