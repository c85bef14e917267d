"""Qiskit circuit -> gate-level schedule for the `quantify` and `qblox` executors.

Every gate is lowered to the four operations a transmon device compiles natively: `Rxy`,
`Rz`, `CZ` and `Measure`, plus `Reset` and `IdlePulse` (delay). Angles are in degrees.
Circuit order: in each list below the first operation is applied first.

The operation classes come from a `GateOps`: quantify-scheduler's by default
(`quantify_ops`), qblox-scheduler's for the qblox executor (`qblox.qblox_ops`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

QUANTIFY_GATES: tuple[str, ...] = (
    "reset", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg", "cx", "cz", "rx",
    "ry", "rz", "p", "u", "swap", "measure", "barrier", "delay",
)  # fmt: skip

# Delay units to seconds; durations are rounded to the 4 ns grid of the Qblox sequencers.
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_GRID = 4e-9

# Single-qubit gates as ("rxy", theta, phi) / ("rz", theta) steps, fixed angles.
_FIXED: dict[str, tuple[tuple[Any, ...], ...]] = {
    "x": (("rxy", 180.0, 0.0),),
    "y": (("rxy", 180.0, 90.0),),
    "z": (("rz", 180.0),),
    # H = Ry(90) . Z up to a global phase: Z first, then Ry(90).
    "h": (("rz", 180.0), ("rxy", 90.0, 90.0)),
    "s": (("rz", 90.0),),
    "sdg": (("rz", -90.0),),
    "t": (("rz", 45.0),),
    "tdg": (("rz", -45.0),),
    "sx": (("rxy", 90.0, 0.0),),
    "sxdg": (("rxy", -90.0, 0.0),),
}


class UnsupportedGate(ValueError):
    """A circuit uses a gate the executor cannot lower."""


@dataclass(frozen=True)
class GateOps:
    """The scheduler library a circuit is lowered into.

    Attributes:
        executor: Executor name used in error messages.
        schedule: `(name, repetitions) -> schedule`.
        rxy: `(theta, phi, qubit) -> Rxy`.
        rz: `(theta, qubit) -> Rz`.
        cz: `(control, target) -> CZ`.
        reset: `(*qubits) -> Reset`.
        idle: `(seconds) -> IdlePulse`.
        measure: `(qubit index, acq_index, protocol, bin_mode) -> Measure`; protocol and
            bin_mode use quantify's names ("SSBIntegrationComplex"/"ThresholdedAcquisition",
            "append"/"average").
    """

    executor: str
    schedule: Callable[[str, int], Any]
    rxy: Callable[[float, float, str], Any]
    rz: Callable[[float, str], Any]
    cz: Callable[[str, str], Any]
    reset: Callable[..., Any]
    idle: Callable[[float], Any]
    measure: Callable[[int, int, str, str], Any]


def quantify_ops() -> GateOps:
    """quantify-scheduler's gate library (imported on call)."""
    from quantify_scheduler import Schedule
    from quantify_scheduler.operations.gate_library import CZ, Measure, Reset, Rxy, Rz
    from quantify_scheduler.operations.pulse_library import IdlePulse

    def measure(q: int, acq_index: int, protocol: str, bin_mode: str) -> Any:
        return Measure(
            f"q{q}", acq_channel=q, acq_index=acq_index, acq_protocol=protocol, bin_mode=bin_mode
        )

    return GateOps(
        executor="quantify",
        schedule=lambda name, shots: Schedule(name, repetitions=shots),
        rxy=lambda theta, phi, qubit: Rxy(theta=theta, phi=phi, qubit=qubit),
        rz=lambda theta, qubit: Rz(theta=theta, qubit=qubit),
        cz=lambda control, target: CZ(qC=control, qT=target),
        reset=Reset,
        idle=IdlePulse,
        measure=measure,
    )


@dataclass
class Lowered:
    """A circuit converted to a schedule.

    Attributes:
        schedule: The quantify Schedule.
        clbit_map: (qubit index, acq_index, clbit) per measurement, in program order.
        acq_counts: Number of measurements per qubit index (acq_index range).
    """

    schedule: Any
    clbit_map: list[tuple[int, int, int]] = field(default_factory=list)
    acq_counts: dict[int, int] = field(default_factory=dict)


def _degrees(value: Any) -> float:
    return math.degrees(float(value))


def single_qubit_steps(
    name: str, params: list[Any], executor: str = "quantify"
) -> tuple[tuple[Any, ...], ...]:
    """Returns the Rxy/Rz steps of a one-qubit gate (angles in degrees).

    Raises:
        UnsupportedGate: If `name` is not a one-qubit gate of the supported set.
    """
    if name in _FIXED:
        return _FIXED[name]
    if name == "rx":
        return (("rxy", _degrees(params[0]), 0.0),)
    if name == "ry":
        return (("rxy", _degrees(params[0]), 90.0),)
    if name in ("rz", "p"):
        return (("rz", _degrees(params[0])),)
    if name == "u":
        theta, phi, lam = (_degrees(p) for p in params)
        # U(theta, phi, lambda) = Rz(phi) . Ry(theta) . Rz(lambda).
        return (("rz", lam), ("rxy", theta, 90.0), ("rz", phi))
    raise UnsupportedGate(f"Gate '{name}' is not supported by the {executor} executor")


def delay_seconds(duration: Any, unit: str, executor: str = "quantify") -> float:
    """Converts a Qiskit delay to seconds on the 4 ns grid.

    Raises:
        ValueError: For units other than s/ms/us/ns (e.g. "dt").
    """
    scale = _UNITS.get(unit)
    if scale is None:
        raise ValueError(f"delay unit '{unit}' is not supported by the {executor} executor")
    return round(float(duration) * scale / _GRID) * _GRID


class _Builder:
    def __init__(
        self, name: str, shots: int, edges: set[str], protocol: str, bin_mode: str, ops: GateOps
    ):
        self.ops = ops
        self.schedule = ops.schedule(name, shots)
        self.edges = edges
        self.protocol = protocol
        self.bin_mode = bin_mode
        self.lowered = Lowered(self.schedule)
        # Measurements on distinct qubits that follow each other start together.
        self._measure_group: Any = None
        self._measure_qubits: set[int] = set()

    def add(self, operation: Any) -> Any:
        self._measure_group = None
        self._measure_qubits = set()
        return self.schedule.add(operation)

    def rxy(self, theta: float, phi: float, q: int) -> None:
        self.add(self.ops.rxy(theta, phi, f"q{q}"))

    def rz(self, theta: float, q: int) -> None:
        self.add(self.ops.rz(theta, f"q{q}"))

    def steps(self, steps: tuple[tuple[Any, ...], ...], q: int) -> None:
        for step in steps:
            if step[0] == "rxy":
                self.rxy(step[1], step[2], q)
            else:
                self.rz(step[1], q)

    def cz(self, a: int, b: int) -> None:
        # CZ is symmetric, so whichever orientation the device defines is used.
        if f"q{a}_q{b}" in self.edges:
            self.add(self.ops.cz(f"q{a}", f"q{b}"))
        elif f"q{b}_q{a}" in self.edges:
            self.add(self.ops.cz(f"q{b}", f"q{a}"))
        else:
            raise ValueError(
                f"qubits q{a} and q{b} are not coupled: the device config has no edge "
                f"q{a}_q{b} or q{b}_q{a}"
            )

    def cx(self, control: int, target: int) -> None:
        # CX = (I x H) . CZ . (I x H).
        self.steps(_FIXED["h"], target)
        self.cz(control, target)
        self.steps(_FIXED["h"], target)

    def measure(self, q: int, clbit: int) -> None:
        acq_index = self.lowered.acq_counts.get(q, 0)
        self.lowered.acq_counts[q] = acq_index + 1
        self.lowered.clbit_map.append((q, acq_index, clbit))
        operation = self.ops.measure(q, acq_index, self.protocol, self.bin_mode)
        if self._measure_group is not None and q not in self._measure_qubits:
            self.schedule.add(operation, ref_op=self._measure_group, ref_pt="start")
        else:
            self._measure_group = self.schedule.add(operation)
            self._measure_qubits = set()
        self._measure_qubits.add(q)


COMPOSITE_GATES = frozenset({"crz", "cp", "cu1", "ccx"})
"""Gates of the supported set that are lowered through their Qiskit definitions
(controlled rotations and Toffoli become cx plus single-qubit rotations)."""


def _expand_composites(circuit: QuantumCircuit) -> QuantumCircuit:
    if not any(i.operation.name in COMPOSITE_GATES for i in circuit.data):
        return circuit
    # Two rounds: ccx's definition is already primitive; cp/crz expand to p/rz + cx.
    return circuit.decompose(gates_to_decompose=sorted(COMPOSITE_GATES), reps=2)


def circuit_to_schedule(
    circuit: QuantumCircuit,
    shots: int,
    *,
    name: str,
    edges: set[str],
    protocol: str,
    bin_mode: str,
    ops: GateOps | None = None,
) -> Lowered:
    """Lowers a bound Qiskit circuit to a gate-level schedule with `shots` repetitions.

    Every used qubit is reset at the start of the schedule (quantify's Reset is the
    thermalisation wait), then the instructions follow in circuit order.

    Args:
        circuit: The circuit, parameters bound.
        shots: Schedule repetitions.
        name: Schedule name.
        edges: Edge names of the device ("q0_q1") for CZ.
        protocol: Acquisition protocol of every Measure.
        bin_mode: Bin mode of every Measure ("append" or "average").
        ops: The gate library; quantify-scheduler's when None.

    Raises:
        UnsupportedGate: "Gate '<name>' is not supported by the <executor> executor".
        ValueError: For uncoupled CZ pairs or unsupported delay units.
    """
    ops = ops or quantify_ops()
    circuit = _expand_composites(circuit)
    builder = _Builder(name, shots, edges, protocol, bin_mode, ops)
    if circuit.num_qubits:
        builder.add(ops.reset(*(f"q{i}" for i in range(circuit.num_qubits))))
    for instruction in circuit.data:
        operation = instruction.operation
        gate = operation.name
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if gate == "barrier":
            continue
        if gate == "measure":
            builder.measure(qubits[0], circuit.find_bit(instruction.clbits[0]).index)
        elif gate == "reset":
            builder.add(ops.reset(f"q{qubits[0]}"))
        elif gate == "delay":
            unit = getattr(operation, "unit", "dt")
            seconds = delay_seconds(operation.params[0], unit, ops.executor)
            if seconds > 0:
                builder.add(ops.idle(seconds))
        elif gate == "cz":
            builder.cz(qubits[0], qubits[1])
        elif gate == "cx":
            builder.cx(qubits[0], qubits[1])
        elif gate == "swap":
            a, b = qubits
            builder.cx(a, b)
            builder.cx(b, a)
            builder.cx(a, b)
        elif len(qubits) == 1 and gate in QUANTIFY_GATES:
            steps = single_qubit_steps(gate, list(operation.params), ops.executor)
            builder.steps(steps, qubits[0])
        else:
            raise UnsupportedGate(f"Gate '{gate}' is not supported by the {ops.executor} executor")
    return builder.lowered
