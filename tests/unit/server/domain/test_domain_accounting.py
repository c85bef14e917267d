"""Reservation rules: estimates, remaining balance and the per-user queue limit."""

from __future__ import annotations

import math

import pytest

from qpi.server.domain import accounting
from qpi.server.domain.errors import ResourceExhaustedError
from qpi.server.domain.jobs import CircuitSpec


def test_total_shots_counts_every_run() -> None:
    circuits = [
        CircuitSpec("c0"),  # job shots, one run
        CircuitSpec("c1", shots=10),  # own shots
        CircuitSpec("c2", parameter_values=[[0.1], [0.2], [0.3]]),  # three runs
    ]
    assert accounting.total_shots(circuits, job_shots=100) == 100 + 10 + 300


def test_estimate_is_shots_times_seconds_per_shot_and_never_negative() -> None:
    assert accounting.estimate_seconds(1000, 0.002) == pytest.approx(2.0)
    assert accounting.estimate_seconds(1000, 0.0) == 0.0
    assert accounting.estimate_seconds(10, math.inf) == 0.0
    assert accounting.estimate_seconds(10, -1.0) == 0.0


def test_shot_times_per_qpu_fall_back_to_the_default() -> None:
    times = accounting.ShotTimes(0.001, {"fridge": 0.01})
    assert times.for_qpu("fridge") == 0.01
    assert times.for_qpu("other") == 0.001


@pytest.mark.parametrize(
    ("balance", "reserved", "estimate", "allowed"),
    [
        (2.0, 0.0, 0.5, True),
        (2.0, 1.5, 0.5, True),  # exactly fits
        (2.0, 1.6, 0.5, False),  # would overrun
        (2.0, 2.0, 0.0, False),  # nothing left, even for a free estimate
        (0.0, 0.0, 0.0, False),
        (1.0, 0.0, 5.0, False),  # larger than the whole balance: waits for a top-up
    ],
)
def test_can_reserve(balance: float, reserved: float, estimate: float, allowed: bool) -> None:
    assert accounting.can_reserve(balance, reserved, estimate, is_superuser=False) is allowed


def test_administrators_are_never_held_back() -> None:
    assert accounting.can_reserve(0.0, 100.0, 5.0, is_superuser=True)


def test_pending_limit() -> None:
    accounting.ensure_can_queue(2, 3, is_superuser=False)
    accounting.ensure_can_queue(30, 3, is_superuser=True)
    with pytest.raises(ResourceExhaustedError) as refused:
        accounting.ensure_can_queue(3, 3, is_superuser=False)
    assert refused.value.reason == "TOO_MANY_PENDING_JOBS"
    assert refused.value.metadata == {"pending": "3", "max_pending_per_user": "3"}
