"""Stale-lease recovery, the last resort when a lease holder vanished without a trace
(e.g. the server itself restarted and the driver never came back), and telemetry pruning:
the leader's maintenance duties (see :mod:`qpi.server.cluster.leadership`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from qpi.server.services.database import Database
from qpi.server.services.lease_service import LeaseService
from qpi.server.services.telemetry_service import PRUNE_BATCH, TelemetryService

logger = logging.getLogger(__name__)

Duty = tuple[str, float, Callable[[], Awaitable[object]]]
"""A named coroutine function and the seconds between its runs."""


def maintenance_duties(
    db: Database,
    jobs: LeaseService,
    telemetry: TelemetryService,
    recovery_interval: float,
    prune_interval: float,
) -> list[Duty]:
    """Recovery and telemetry pruning, as the leader's periodic duties: each runs once
    leadership is taken, then every interval after its previous run ended, so a slow run
    never overlaps the next."""

    async def recover() -> None:
        ids = await db.run(jobs.recover_stale)
        if ids:
            logger.warning("[Recovery] requeued %d job(s) with expired leases: %s", len(ids), ids)

    async def prune() -> None:
        # A batch per hop: other database work runs between the batches.
        while await db.run(telemetry.prune) == PRUNE_BATCH:
            pass

    return [("recovery", recovery_interval, recover), ("telemetry pruning", prune_interval, prune)]
