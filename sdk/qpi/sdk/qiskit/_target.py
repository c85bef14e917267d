"""Building a Qiskit ``Target`` from what a QPU reports about itself."""

from __future__ import annotations

from qiskit.circuit import Measure
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

Qargs = dict[tuple[int, ...] | None, InstructionProperties | None]


def build_target(qpu: Qpu) -> Target:
    """Returns a ``Target`` with the QPU's native gates on its coupling map.

    Unknown gate names are skipped; with no usable native gates the standard
    :data:`DEFAULT_GATES` are used. Without a coupling map (or an unknown qubit count)
    multi-qubit gates are available on every pair (ideal, no error data).

    Example:
        >>> target = build_target(client.get_qpu("qpu-1"))
        >>> sorted(target.operation_names)[:3]
        ['ccx', 'ch', 'cp']
    """
    mapping = get_standard_gate_name_mapping()
    names = [name for name in qpu.native_gates if name in mapping] or list(DEFAULT_GATES)
    num_qubits = qpu.num_qubits or None
    target = Target(description=f"QPI QPU {qpu.name}", num_qubits=num_qubits)
    edges = [tuple(edge) for edge in qpu.coupling_map]
    for name in names:
        gate = mapping[name]
        qargs: Qargs | None
        if gate.num_qubits == 1 and num_qubits:
            qargs = {(q,): None for q in range(num_qubits)}
        elif gate.num_qubits == 2 and edges:
            qargs = dict.fromkeys(edges)
        elif edges and gate.num_qubits > 2:
            continue  # cannot place a 3-qubit gate on a pairwise coupling map
        else:
            qargs = None  # ideal on any qubits
        target.add_instruction(gate, qargs, name=name)
    measure_qargs: Qargs | None = {(q,): None for q in range(num_qubits)} if num_qubits else None
    target.add_instruction(Measure(), measure_qargs)
    return target
