"""Job payload dataclasses handed to executors, built from the protobuf `JobPayload`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from qpi.v1 import job_pb2

DEFAULT_SHOTS = 1024

MeasReturn = Literal["single", "avg"]


@dataclass(frozen=True)
class CircuitPayload:
    """One circuit of a job.

    Attributes:
        circuit: OpenQASM 2 or 3 source, header included.
        parameter_values: Parameter sets to bind (one run each), or None for a single run.
        shots: Per-circuit shots override; None uses the job's shots.
    """

    circuit: str
    parameter_values: list[list[float]] | None = None
    shots: int | None = None


@dataclass(frozen=True)
class JobPayload:
    """Everything an executor needs to run one job.

    Attributes:
        circuits: The circuits, run in order.
        id: Job id (used for file names of raw data).
        shots: Default shots per circuit.
        meas_level: 0 raw traces, 1 IQ points, 2 discriminated counts.
        meas_return: "single" (per shot) or "avg" (shot-averaged) for levels 0 and 1.
        acq_rotation: Optional discrimination rotation in degrees.
        acq_threshold: Optional discrimination threshold.
    """

    circuits: list[CircuitPayload]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    shots: int = DEFAULT_SHOTS
    meas_level: int = 2
    meas_return: MeasReturn = "single"
    acq_rotation: float | None = None
    acq_threshold: float | None = None

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("job id must not be blank")
        if not self.circuits:
            raise ValueError("a job needs at least one circuit")
        for index, circuit in enumerate(self.circuits):
            if not circuit.circuit.strip():
                raise ValueError(f"circuit {index} is empty")
            if circuit.shots is not None and circuit.shots < 1:
                raise ValueError(f"circuit {index} has a non-positive shot count")
        if self.shots < 1:
            raise ValueError("shots must be positive")
        if self.meas_level not in (0, 1, 2):
            raise ValueError(f"meas_level must be 0, 1 or 2, got {self.meas_level}")
        if self.meas_return not in ("single", "avg"):
            raise ValueError(f"meas_return must be 'single' or 'avg', got {self.meas_return!r}")

    def shots_for(self, index: int) -> int:
        """Returns the shots to use for circuit `index`."""
        override = self.circuits[index].shots
        return override if override else self.shots

    @classmethod
    def from_proto(cls, job_id: str, message: job_pb2.JobPayload) -> JobPayload:
        """Builds a payload from the wire message.

        Args:
            job_id: The job id from the assignment.
            message: The protobuf payload.

        Returns:
            The validated payload.

        Raises:
            ValueError: If the payload is malformed.
        """
        circuits = [
            CircuitPayload(
                circuit=c.qasm,
                parameter_values=[list(p.values) for p in c.parameter_values] or None,
                shots=c.shots or None,
            )
            for c in message.circuits
        ]
        return cls(
            circuits=circuits,
            id=job_id,
            shots=message.shots or DEFAULT_SHOTS,
            meas_level=message.meas_level if message.HasField("meas_level") else 2,
            meas_return="avg" if message.meas_return == job_pb2.MEAS_RETURN_AVG else "single",
            acq_rotation=message.acq_rotation if message.HasField("acq_rotation") else None,
            acq_threshold=message.acq_threshold if message.HasField("acq_threshold") else None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobPayload:
        """Builds a payload from a plain dict (the original JSON shape, for library users).

        Circuits may be strings or dicts with a `circuit`, `qasm` or `circuit_qasm` key.
        """
        raw = data.get("circuits")
        if raw is None:
            legacy = data.get("qasm") or data.get("circuit_qasm") or data.get("circuit")
            raw = [legacy] if legacy else []
        circuits: list[CircuitPayload] = []
        for item in raw:
            if isinstance(item, str):
                circuits.append(CircuitPayload(circuit=item))
                continue
            source = item.get("circuit") or item.get("qasm") or item.get("circuit_qasm") or ""
            circuits.append(
                CircuitPayload(
                    circuit=source,
                    parameter_values=item.get("parameter_values") or None,
                    shots=item.get("shots") or None,
                )
            )
        extra: dict[str, Any] = {"id": str(data["id"])} if data.get("id") else {}
        return cls(
            circuits=circuits,
            shots=int(data.get("shots") or DEFAULT_SHOTS),
            meas_level=int(data.get("meas_level", 2)),
            meas_return=data.get("meas_return", "single"),
            acq_rotation=data.get("acq_rotation"),
            acq_threshold=data.get("acq_threshold"),
            **extra,
        )
