"""The hub session of an NNG driver: capacity 1, and cancelled jobs still occupy it.

The NNG protocol cannot tell a driver to stop a job. A cancelled job therefore keeps
running on the driver, and anything dispatched meanwhile would queue behind it — more in
flight than the driver runs. So a revoked job stays "draining": it counts against the
driver's capacity until its (discarded) result arrives or `drain_seconds` pass, the
latter for a driver that never answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from qpi.server.drivers.session import Command, DriverSession, Revoke


@dataclass
class NngSession(DriverSession):
    """A DriverSession whose revoked jobs hold capacity until the driver finishes them."""

    drain_seconds: float = 60.0
    draining: dict[str, float] = field(default_factory=dict)

    def send(self, command: Command) -> None:
        """Marks revoked jobs as draining before the dispatcher can reuse their slot."""
        if isinstance(command, Revoke):
            self.draining[command.job_id] = time.monotonic() + self.drain_seconds
        super().send(command)

    def finish_draining(self, job_id: str) -> bool:
        """Ends a cancelled job's drain when its result arrives; False if it was not one."""
        return self.draining.pop(job_id, None) is not None

    def expire_drains(self, now: float | None = None) -> bool:
        """Forgets drains that outlived `drain_seconds`; True if capacity was freed."""
        now = time.monotonic() if now is None else now
        expired = [job for job, deadline in self.draining.items() if deadline <= now]
        for job in expired:
            del self.draining[job]
        return bool(expired)

    def free_capacity(self) -> int:
        """Capacity minus leases minus cancelled jobs the driver is still running."""
        return max(super().free_capacity() - len(self.draining), 0)
