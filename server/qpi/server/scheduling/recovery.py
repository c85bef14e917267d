"""Stale-lease recovery, the last resort when a lease holder vanished without a trace
(e.g. the server itself restarted and the driver never came back)."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from qpi.server.services.database import Database
from qpi.server.services.lease_service import LeaseService
from qpi.server.services.telemetry_service import TelemetryService

logger = logging.getLogger(__name__)


def start_maintenance(
    db: Database,
    jobs: LeaseService,
    telemetry: TelemetryService,
    recovery_interval: float,
    prune_interval: float,
) -> AsyncIOScheduler:
    """Schedules recovery and telemetry pruning on the running event loop."""

    async def recover() -> None:
        ids = await db.run(jobs.recover_stale)
        if ids:
            logger.warning("[Recovery] requeued %d job(s) with expired leases: %s", len(ids), ids)

    async def prune() -> None:
        await db.run(telemetry.prune)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(
        recover,
        "interval",
        seconds=recovery_interval,
        id="recovery",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        prune,
        "interval",
        seconds=prune_interval,
        id="telemetry-prune",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
