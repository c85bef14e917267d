"""One connected driver: its leases, its outbox and its liveness."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from qpi.server.domain.errors import QpiError


@dataclass(frozen=True)
class Assign:
    """Lease a job to the driver."""

    job_id: str
    attempt: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Revoke:
    """Cancel a lease on the driver."""

    job_id: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class Ack:
    """Tell the driver a result was handled (stored or ignored)."""

    job_id: str
    attempt: int
    accepted: bool


@dataclass(frozen=True)
class Ping:
    """Ask the driver for a sign of life (the native driver answers with a heartbeat)."""


Command = Assign | Revoke | Ack | Ping


@dataclass
class DriverSession:
    """State of one live driver connection."""

    driver_id: str
    qpu_id: str
    name: str
    executor: str
    transport: str
    capacity: int = 1
    # Leases beyond `capacity` the driver queues while it runs others (pipelining).
    prefetch: int = 0
    executes_jobs: bool = True
    host: str = ""
    leases: set[tuple[str, int]] = field(default_factory=set)
    # Leases the driver acknowledged on this stream (accepted, or resumed at hello): only
    # these are judged when a heartbeat omits them.
    confirmed: set[tuple[str, int]] = field(default_factory=set)
    # Leases assigned on this stream, in assignment order, with their jobs' owners: the
    # driver runs its leases in that order, so the ones past its capacity are queued.
    assigned: dict[tuple[str, int], str] = field(default_factory=dict)
    # Results acknowledged whose acknowledgement the driver may not have read yet.
    answered: set[tuple[str, int]] = field(default_factory=set)
    outbox: asyncio.Queue[Command | None] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False
    # Why the server ended the session, for transports that can tell the driver (gRPC
    # ends the stream with this status instead of OK).
    close_error: QpiError | None = None
    # The driver announced it is shutting down: it gets no new leases.
    stopping: bool = False
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Execution slots offered to submissions being stored (see Dispatcher.offer): held
    # back from dispatch rounds until the submission settles.
    reserved: int = 0

    def free_capacity(self) -> int:
        """How many more leases the driver may hold (flow control)."""
        if self.closed or self.stopping or not self.executes_jobs:
            return 0
        return max(self.capacity + self.prefetch - len(self.leases) - self.reserved, 0)

    def free_slots(self) -> int:
        """Free execution slots (capacity), not counting prefetch slots; may be negative
        while prefetched jobs wait."""
        if self.closed or self.stopping or not self.executes_jobs:
            return 0
        return self.capacity - len(self.leases) - self.reserved

    def assign(self, lease: tuple[str, int], owner: str) -> None:
        """Records a lease handed to the driver (the caller sends the assignment)."""
        self.leases.add(lease)
        self.assigned[lease] = owner

    def queued(self) -> list[tuple[tuple[str, int], str]]:
        """Leases (with owners) the driver holds but has not started: those assigned after
        its first `capacity` leases (leases resumed at hello count as started)."""
        if not self.prefetch:
            return []
        ahead = len(self.leases) - len(self.assigned)  # resumed: older than any assigned
        return list(self.assigned.items())[max(self.capacity - ahead, 0) :]

    def drop_lease(self, lease: tuple[str, int]) -> None:
        """Forgets a lease (stored, released, revoked or reconciled away)."""
        self.leases.discard(lease)
        self.confirmed.discard(lease)
        self.assigned.pop(lease, None)

    def touch(self) -> None:
        """Records that the driver is alive."""
        self.last_seen = time.monotonic()

    def send(self, command: Command) -> None:
        """Queues a command for the transport to deliver."""
        if not self.closed:
            self.outbox.put_nowait(command)

    def close(self, error: QpiError | None = None) -> None:
        """Stops the session; the transport sees `None` and ends the connection.

        Args:
            error: Why, if the driver should hear a reason (e.g. DRIVER_DISABLED).
        """
        if not self.closed:
            self.closed = True
            self.close_error = error
            self.outbox.put_nowait(None)

    async def answers(self, timeout: float) -> bool:
        """Pings the driver and waits up to `timeout` seconds for any message from it.

        Returns:
            True if the driver spoke after the ping was queued; False if it stayed silent
            or the session ended.
        """
        asked = time.monotonic()
        self.send(Ping())
        deadline = asked + timeout
        while not self.closed:
            if self.last_seen >= asked:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return False
