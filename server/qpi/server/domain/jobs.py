"""Job states, submission validation and QPU-seconds accounting.

Validation here is structural (counts, sizes, headers, ranges); parsing the QASM
itself happens in another layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from qpi.server.domain.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
    invalid_field,
)

DEFAULT_SHOTS = 1024
"""Shots used when a job asks for 0."""
DEFAULT_MEAS_LEVEL = 2
"""Measurement level used when none is given (discriminated counts)."""
MEAS_LEVELS = frozenset({0, 1, 2})
MEAS_RETURNS = frozenset({"single", "avg"})
PARAMETER_VALUE_BYTES = 8
"""Bytes one parameter value (a double) adds to the payload size."""


class JobState(StrEnum):
    """Lifecycle state of a job."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
)
"""States a job never leaves."""


def can_cancel(state: JobState | str) -> bool:
    """Tell whether a job in ``state`` may be cancelled (pending or running)."""
    return JobState(state) in (JobState.PENDING, JobState.RUNNING)


def ensure_can_cancel(state: JobState | str, job_id: str) -> None:
    """Raise unless a job in ``state`` may be cancelled.

    Raises:
        FailedPreconditionError: ``JOB_ALREADY_TERMINAL`` if the job has finished.
    """
    if not can_cancel(state):
        raise FailedPreconditionError(
            "JOB_ALREADY_TERMINAL",
            f"Job {job_id} is already {JobState(state).value} and cannot be cancelled.",
            metadata={"job_id": job_id, "state": JobState(state).value},
        )


@dataclass(frozen=True)
class CircuitSpec:
    """One submitted circuit as plain data.

    Attributes:
        qasm: OpenQASM 2 or 3 source.
        parameter_values: Parameter sets, one run per set.
        shots: Per-circuit shots; 0 means "use the job's shots".
    """

    qasm: str
    parameter_values: Sequence[Sequence[float]] = ()
    shots: int = 0


@dataclass(frozen=True)
class JobLimits:
    """Server-configured submission limits."""

    max_shots: int
    max_circuits: int
    max_payload_bytes: int


@dataclass(frozen=True)
class ValidatedPayload:
    """A payload that passed :func:`validate_payload`, with defaults applied.

    Circuit ``shots`` are kept as given (0 still means "the job's shots").
    """

    circuits: tuple[CircuitSpec, ...]
    shots: int
    meas_level: int
    meas_return: str
    payload_bytes: int


_HEADER = re.compile(r"OPENQASM\s+[23](?:\.\d+)?\s*;")
_LEADING_NOISE = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.DOTALL)


def has_qasm_header(source: str) -> bool:
    """Tell whether ``source`` starts with an ``OPENQASM 2`` or ``OPENQASM 3`` header.

    Leading whitespace, a byte-order mark, ``//`` and ``/* */`` comments are skipped.
    """
    text = source.removeprefix("\ufeff")
    start = _LEADING_NOISE.match(text)
    offset = start.end() if start else 0
    return _HEADER.match(text, offset) is not None


def payload_size_bytes(circuits: Sequence[CircuitSpec]) -> int:
    """Size of a payload: UTF-8 bytes of every source plus 8 bytes per parameter value."""
    size = 0
    for circuit in circuits:
        size += len(circuit.qasm.encode("utf-8"))
        size += PARAMETER_VALUE_BYTES * sum(len(values) for values in circuit.parameter_values)
    return size


def _check_shots(shots: int, field: str, limits: JobLimits) -> None:
    if shots <= 0 or shots > limits.max_shots:
        raise invalid_field(
            field,
            f"{field} must be between 1 and {limits.max_shots}, got {shots}.",
            field=field,
            value=shots,
            max_shots=limits.max_shots,
        )


def _check_circuit(index: int, circuit: CircuitSpec, limits: JobLimits) -> None:
    field = f"circuits[{index}].qasm"
    if not circuit.qasm.strip():
        raise InvalidArgumentError(
            "INVALID_QASM",
            f"Circuit {index} has an empty OpenQASM source.",
            metadata={"circuit_index": index},
            field=field,
        )
    if not has_qasm_header(circuit.qasm):
        raise InvalidArgumentError(
            "INVALID_QASM",
            f"Circuit {index} must start with an 'OPENQASM 2' or 'OPENQASM 3' header.",
            metadata={"circuit_index": index},
            field=field,
        )
    if circuit.shots != 0:
        _check_shots(circuit.shots, f"circuits[{index}].shots", limits)
    for set_index, values in enumerate(circuit.parameter_values):
        for value in values:
            if not math.isfinite(value):
                field = f"circuits[{index}].parameter_values[{set_index}]"
                raise invalid_field(
                    field,
                    f"Parameter set {set_index} of circuit {index} contains the "
                    f"non-finite value {value}.",
                    circuit_index=index,
                    parameter_set_index=set_index,
                    value=value,
                )


def validate_payload(
    circuits: Sequence[CircuitSpec],
    *,
    shots: int,
    meas_level: int | None,
    meas_return: str,
    limits: JobLimits,
    payload_bytes: int | None = None,
) -> ValidatedPayload:
    """Validate a submitted job and apply defaults.

    Args:
        circuits: The circuits, in order.
        shots: Job-level shots; 0 means :data:`DEFAULT_SHOTS`.
        meas_level: 0, 1 or 2; ``None`` means :data:`DEFAULT_MEAS_LEVEL`.
        meas_return: ``"single"`` or ``"avg"``; empty means ``"single"``.
        limits: Configured limits.
        payload_bytes: Size to check against the limit; defaults to
            :func:`payload_size_bytes` of ``circuits``.

    Returns:
        The normalised payload.

    Raises:
        InvalidArgumentError: ``INVALID_FIELD`` or ``INVALID_QASM``.
        ResourceExhaustedError: ``PAYLOAD_TOO_LARGE``.
    """
    if not circuits:
        raise invalid_field("circuits", "A job needs at least one circuit.")
    if len(circuits) > limits.max_circuits:
        raise invalid_field(
            "circuits",
            f"A job may contain at most {limits.max_circuits} circuits, got {len(circuits)}.",
            count=len(circuits),
            max_circuits=limits.max_circuits,
        )
    size = payload_size_bytes(circuits) if payload_bytes is None else payload_bytes
    if size > limits.max_payload_bytes:
        raise ResourceExhaustedError(
            "PAYLOAD_TOO_LARGE",
            f"The job payload is {size} bytes, more than the limit of "
            f"{limits.max_payload_bytes} bytes.",
            metadata={"size_bytes": size, "max_payload_bytes": limits.max_payload_bytes},
            field="circuits",
        )
    job_shots = DEFAULT_SHOTS if shots == 0 else shots
    _check_shots(job_shots, "shots", limits)
    level = DEFAULT_MEAS_LEVEL if meas_level is None else meas_level
    if level not in MEAS_LEVELS:
        raise invalid_field(
            "meas_level", f"meas_level must be 0, 1 or 2, got {level}.", value=level
        )
    mode = meas_return or "single"
    if mode not in MEAS_RETURNS:
        raise invalid_field(
            "meas_return", f"meas_return must be 'single' or 'avg', got '{mode}'.", value=mode
        )
    for index, circuit in enumerate(circuits):
        _check_circuit(index, circuit, limits)
    return ValidatedPayload(tuple(circuits), job_shots, level, mode, size)


def charge_seconds(
    execution_seconds: float, balance: float, is_superuser: bool
) -> tuple[float, float]:
    """Charge a finished job's execution time to its owner.

    The charge is the driver-reported execution time (never negative; NaN counts as 0).
    Superusers are not charged. A balance never goes below 0: the amount actually
    deducted is returned so it can be recorded on the job.

    Args:
        execution_seconds: Execution time reported by the driver.
        balance: The owner's QPU-seconds balance before the charge.
        is_superuser: Whether the owner is a superuser.

    Returns:
        ``(charged, new_balance)``; ``new_balance`` is never negative and, for a
        non-negative ``balance``, ``charged == balance - new_balance``.
    """
    if is_superuser:
        return 0.0, balance
    cost = execution_seconds if execution_seconds > 0 else 0.0  # NaN > 0 is False
    available = max(balance, 0.0)
    charged = min(cost, available)
    return charged, available - charged


def ensure_can_submit(balance: float, is_superuser: bool) -> None:
    """Raise unless the caller may submit a job.

    Raises:
        ResourceExhaustedError: ``INSUFFICIENT_QPU_SECONDS`` if a non-superuser's
            balance is not positive.
    """
    if not is_superuser and not balance > 0:
        raise ResourceExhaustedError(
            "INSUFFICIENT_QPU_SECONDS", "Insufficient QPU seconds balance."
        )
