"""Building a Qiskit ``Target`` from what a QPU reports about itself."""

from __future__ import annotations

from itertools import permutations

from qiskit.circuit import Measure, Reset
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler import InstructionProperties, Target

from qpi.sdk.models import Qpu

# Used when the QPU reports no native gates: a broad standard set, so that circuits need
# no translation before they reach a simulator-backed or fully-featured QPU.
DEFAULT_GATES = (
    "id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg",
    "rx", "ry", "rz", "p", "u", "cx", "cy", "cz", "ch", "swap", "crx", "cry", "crz",
    "cp", "rxx", "ryy", "rzz", "ccx", "cswap",
)  # fmt: skip

# Names drivers list among their native operations that are not gates: measure and reset
# are added as their own instructions (once), barrier needs no Target entry, and delay
# only matters to scheduling passes, which QPI does not run.
NON_GATES = frozenset({"measure", "reset", "barrier", "delay"})

ALL_TO_ALL_PAIRS_MAX_QUBITS = 32
"""Above this many qubits an all-to-all QPU gets global (qargs-free) two-qubit gates
instead of one entry per ordered pair, which would grow quadratically."""

Qargs = dict[tuple[int, ...], InstructionProperties | None]
Calibration = dict[tuple[str, tuple[int, ...]], InstructionProperties]


def _calibration(qpu: Qpu) -> Calibration:
    """Durations and errors the QPU's executor announced, keyed by (name, qubits)."""
    return {
        (entry.name, tuple(entry.qubits)): InstructionProperties(
            duration=entry.duration, error=entry.error
        )
        for entry in qpu.capabilities.instructions
    }


def _pairs(qpu: Qpu, num_qubits: int | None) -> list[tuple[int, int]] | None:
    """The coupled pairs; None when two-qubit gates are global (all-to-all, size unknown)."""
    if qpu.coupling_map:
        return [
            (a, b)
            for a, b in dict.fromkeys(qpu.coupling_map)
            if num_qubits is None or (a < num_qubits and b < num_qubits)
        ]
    if num_qubits is None or num_qubits > ALL_TO_ALL_PAIRS_MAX_QUBITS:
        return None
    return list(permutations(range(num_qubits), 2))


def _per_qubit(name: str, num_qubits: int | None, cal: Calibration) -> Qargs | None:
    if num_qubits is None:
        return None
    return {(q,): cal.get((name, (q,))) for q in range(num_qubits)}


def build_target(qpu: Qpu) -> Target:
    """Returns a ``Target`` with the QPU's native gates on its coupling map.

    Single-qubit gates, ``measure`` and ``reset`` get one entry per qubit and two-qubit
    gates one per coupled (ordered) pair, each with the duration and error the QPU's
    driver announced (None when unknown). An empty coupling map means all-to-all (a
    simulator): every ordered pair is listed. Unknown gate names are skipped; with no
    usable native gates the standard :data:`DEFAULT_GATES` are used. Gates on three or
    more qubits are kept only where two-qubit gates are global (an all-to-all QPU above
    :data:`ALL_TO_ALL_PAIRS_MAX_QUBITS` or of unknown size): Qiskit's ``transpile``
    rejects them next to a coupling map, and decomposes them anyway.

    Example:
        >>> target = build_target(client.get_qpu("qpu-1"))
        >>> sorted(target.operation_names)[:3]
        ['ccx', 'ch', 'cp']
    """
    mapping = get_standard_gate_name_mapping()
    native = list(dict.fromkeys(qpu.native_gates))
    names = [n for n in native if n in mapping and n not in NON_GATES] or list(DEFAULT_GATES)
    num_qubits = qpu.num_qubits or None
    cal = _calibration(qpu)
    pairs = _pairs(qpu, num_qubits)
    target = Target(description=f"QPI QPU {qpu.name}", num_qubits=num_qubits)
    for name in names:
        gate = mapping[name]
        qargs: Qargs | None
        if gate.num_qubits == 1:
            qargs = _per_qubit(name, num_qubits, cal)
        elif gate.num_qubits == 2:
            qargs = None if pairs is None else {p: cal.get((name, p)) for p in pairs}
        elif pairs is not None:
            # Qiskit's transpile refuses 3-qubit gates next to a coupling map; they are
            # decomposed into the listed pairs' gates instead.
            continue
        else:
            qargs = None  # ideal on any qubits
        target.add_instruction(gate, qargs, name=name)
    target.add_instruction(Measure(), _per_qubit("measure", num_qubits, cal))
    if "reset" in native:
        target.add_instruction(Reset(), _per_qubit("reset", num_qubits, cal))
    return target
