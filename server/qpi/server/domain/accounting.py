"""QPU-time reservations: what a job is expected to cost and whether its owner can pay.

A job's estimate is reserved from its owner's balance while it runs; the charge when it
ends is still the execution time the driver measured (:func:`~qpi.server.domain.jobs.
charge_seconds`). A user is dispatched a job only when the estimate fits in what their
balance leaves after the reservations of their running jobs, so running jobs together
never promise more time than the user has.

The estimate is shots x runs x a per-QPU time per shot. A job's own declared maximum is
deliberately not used: nothing on a driver enforces one, so it would only let a user
under-declare to get more jobs dispatched than their balance covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qpi.server.domain.errors import ResourceExhaustedError
from qpi.server.domain.jobs import CircuitSpec


@dataclass(frozen=True)
class ShotTimes:
    """Expected seconds per shot: one default and optional values per QPU name."""

    default: float
    per_qpu: Mapping[str, float] = field(default_factory=dict)

    def for_qpu(self, name: str) -> float:
        """Seconds per shot on the QPU called ``name``."""
        return self.per_qpu.get(name, self.default)


def total_shots(circuits: Sequence[CircuitSpec], job_shots: int) -> int:
    """Shots a job executes: per circuit, its shots (or the job's) times its parameter sets."""
    return sum(
        (circuit.shots or job_shots) * max(len(circuit.parameter_values), 1) for circuit in circuits
    )


def estimate_seconds(shots: int, seconds_per_shot: float) -> float:
    """Expected QPU seconds of a job executing ``shots`` shots (never negative)."""
    estimate = shots * seconds_per_shot
    return estimate if math.isfinite(estimate) and estimate > 0 else 0.0


def remaining_seconds(balance: float, reserved: float) -> float:
    """What a balance leaves after the reservations of running jobs."""
    return balance - reserved


def can_reserve(balance: float, reserved: float, estimate: float, is_superuser: bool) -> bool:
    """Whether a job with ``estimate`` may start now.

    Administrators are never limited. Anyone else needs a positive remainder that covers
    the whole estimate; otherwise their jobs wait (pending) until jobs finish, releasing
    their reservations, or the balance is topped up.
    """
    if is_superuser:
        return True
    left = remaining_seconds(balance, reserved)
    return left > 0 and estimate <= left


def ensure_can_queue(pending: int, limit: int, is_superuser: bool) -> None:
    """Raise unless a user with ``pending`` queued jobs may queue one more.

    Raises:
        ResourceExhaustedError: ``TOO_MANY_PENDING_JOBS``.
    """
    if not is_superuser and pending >= limit:
        raise ResourceExhaustedError(
            "TOO_MANY_PENDING_JOBS",
            f"You already have {pending} pending jobs, the most this server queues per user "
            f"({limit}); wait for some to finish or cancel some.",
            metadata={"pending": pending, "max_pending_per_user": limit},
        )
