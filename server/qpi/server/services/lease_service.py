"""The driver-facing half of jobs: dispatch snapshots, leases, results and recovery.

Used by the driver hub, the dispatcher and stale-lease recovery. A result is accepted
only from the driver holding that attempt's lease; anything else is a duplicate or
stale and is ignored (but acknowledged).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.clock import Clock
from qpi.server.domain.models import Claim, Job
from qpi.server.domain.policy import QueueSnapshot
from qpi.server.services.events import FREED_TOPIC, EventBus
from qpi.server.store.jobs import Completion, LeaseRepository


@dataclass(frozen=True)
class DriverResult:
    """A result as a driver reported it."""

    job_id: str
    attempt: int
    driver_id: str
    result_json: str | None
    error: str | None
    execution_seconds: float


class LeaseService:
    """Lease use cases of drivers and the scheduler."""

    def __init__(
        self,
        leases: LeaseRepository,
        clock: Clock,
        events: EventBus,
        job_timeout: float,
        max_result_bytes: int,
    ) -> None:
        self._leases = leases
        self._clock = clock
        self._events = events
        self._job_timeout = job_timeout
        self._max_result_bytes = max_result_bytes
        self._held = threading.local()  # claims of the open dispatch round, per thread

    @contextmanager
    def dispatch_round(self) -> Iterator[None]:
        """Snapshot and claim as one unit: on PostgreSQL one transaction in which jobs
        another replica is claiming are skipped. Its claims are announced once committed,
        so no replica re-reads a job before its lease is visible."""
        claimed: list[Job] = []
        self._held.claims = claimed
        try:
            with self._leases.dispatch_round():
                yield
        finally:
            self._held.claims = None
        for job in claimed:
            self._events.publish("job", job)

    def claim_batch(self) -> AbstractContextManager[None]:
        """Several dispatch rounds of one database hop, in one transaction where the store
        makes that safe (see :meth:`LeaseRepository.claim_batch`)."""
        return self._leases.claim_batch()

    def snapshot(self, qpu_id: str) -> tuple[QueueSnapshot, bool]:
        """What the policy needs for one QPU, and whether the QPU is enabled.

        Jobs whose owners' remaining balance does not cover their estimate are left out.
        """
        return self._leases.snapshot(qpu_id, self._clock.now(), accounting.can_reserve)

    def lease_expiry(self) -> datetime:
        """When a lease taken now runs out without a heartbeat."""
        return self._clock.now() + timedelta(seconds=self._job_timeout)

    def claim(self, job_id: str, driver_id: str, session_id: str = "") -> Claim | None:
        """Atomically leases a pending job to a driver, reserving its estimated seconds.

        Returns None if someone else got it, or if its owner's remaining balance no longer
        covers the estimate (the next snapshot then skips that owner).
        """
        now = self._clock.now()
        expires = now + timedelta(seconds=self._job_timeout)
        job = self._leases.claim(
            job_id, driver_id, session_id, now, expires, accounting.can_reserve
        )
        if job is None:
            return None
        held = getattr(self._held, "claims", None)
        if held is None:
            self._events.publish("job", job)
        else:
            held.append(job)
        return Claim(job.id, job.attempt, json.loads(job.payload_json), job.user_id)

    def complete(
        self,
        job_id: str,
        attempt: int,
        driver_id: str,
        *,
        result_json: str | None,
        error: str | None,
        execution_seconds: float,
    ) -> bool:
        """Stores a driver's result if it holds the current lease; charges the owner once."""
        done = self._completion(
            DriverResult(job_id, attempt, driver_id, result_json, error, execution_seconds)
        )
        job = self._leases.complete(
            job_id,
            attempt,
            driver_id,
            result_json=done.result_json,
            error=done.error,
            now=self._now(),
            charge=done.charge,
        )
        if job is None:
            return False
        self._events.publish("job", job)
        self._events.publish(FREED_TOPIC, job.qpu_id)
        return True

    def complete_many(self, results: Sequence[DriverResult]) -> list[bool]:
        """:meth:`complete` for results that arrived together, in one transaction (one
        commit for all); per result whether it was stored."""
        jobs = self._leases.complete_many([self._completion(r) for r in results], self._now())
        for job in jobs:
            if job is not None:
                self._events.publish("job", job)
        for qpu_id in dict.fromkeys(job.qpu_id for job in jobs if job is not None):
            self._events.publish(FREED_TOPIC, qpu_id)
        return [job is not None for job in jobs]

    def _completion(self, result: DriverResult) -> Completion:
        result_json, error = result.result_json, result.error
        if result_json is not None:
            problem = self._result_problem(result_json)
            if problem:
                result_json, error = None, problem
        seconds = result.execution_seconds if math.isfinite(result.execution_seconds) else 0.0

        def charge(balance: float, is_superuser: bool) -> tuple[float, float]:
            charged, left = rules.charge_seconds(seconds, balance, is_superuser)
            # Superusers pay nothing, but the job still records what it used.
            return (max(seconds, 0.0) if is_superuser else charged), left

        return Completion(
            result.job_id, result.attempt, result.driver_id, result_json, error, charge
        )

    def _result_problem(self, result_json: str) -> str:
        """Why a driver's result cannot be stored ("" when it can)."""
        size = len(result_json.encode())
        if size > self._max_result_bytes:
            return (
                f"The result is {size} bytes, above the server's limit of "
                f"{self._max_result_bytes} bytes."
            )
        try:
            if isinstance(json.loads(result_json), dict):
                return ""
        except ValueError:
            pass
        return "The driver sent a result that is not a JSON object."

    def release(self, job_id: str, attempt: int, driver_id: str) -> bool:
        """Returns one lease to the queue (driver hand-back)."""
        return bool(self._requeued(self._leases.release(job_id, attempt, driver_id, self._now())))

    def requeue_driver(self, driver_id: str) -> list[str]:
        """Returns every lease of a driver to the queue at once."""
        return self._requeued(self._leases.requeue_driver(driver_id, self._now()))

    def requeue_session(self, session_id: str) -> list[str]:
        """Returns the leases held by one (ended) driver stream to the queue at once."""
        return self._requeued(self._leases.requeue_session(session_id, self._now()))

    def recover_stale(self) -> list[str]:
        """Requeues running jobs whose lease expired without heartbeats (last resort)."""
        return self._requeued(self._leases.requeue_expired(self._now()))

    def _now(self) -> datetime:
        return self._clock.now()

    def _requeued(self, jobs: Sequence[Job]) -> list[str]:
        for job in jobs:
            self._events.publish("job", job)
            self._events.publish("dispatch", job.qpu_id)
        return [job.id for job in jobs]

    def grace_after_start(self) -> int:
        """Gives every running lease one more lease period from now; returns how many.

        Called when the server starts: while it was down no driver could heartbeat, so
        leases that ran out meanwhile say nothing about their drivers, which redial and
        resume them. Without the grace, recovery would requeue a job its driver is still
        running whenever a restart outlasts the lease period.
        """
        return self._leases.extend_expiring_leases(self._expiry())

    def renew_leases(self, driver_id: str) -> list[tuple[str, int]]:
        """Extends a live driver's leases (called on heartbeats); returns them."""
        return self._leases.renew_leases(driver_id, self._expiry())

    def resume(
        self,
        driver_id: str,
        qpu_id: str,
        held: Sequence[tuple[str, int]],
        session_id: str = "",
    ) -> list[tuple[str, int]]:
        """Re-attaches leases a reconnecting driver still holds, if they are still current."""
        return self._leases.resume(driver_id, qpu_id, held, session_id, self._expiry())

    def leases_of(self, driver_id: str) -> list[tuple[str, int]]:
        """Running leases held by a driver."""
        return self._leases.leases_of(driver_id)

    def _expiry(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._job_timeout)
