"""Targets built from a QPU's reported qubits, coupling map and native gates."""

from qiskit import QuantumCircuit, transpile

from qpi.sdk import Qpu
from qpi.sdk.qiskit._target import DEFAULT_GATES, build_target


def qpu(
    num_qubits: int, edges: tuple[tuple[int, int], ...] = (), gates: tuple[str, ...] = ()
) -> Qpu:
    return Qpu(
        id="q",
        name="qpu",
        status="online",
        enabled=True,
        num_qubits=num_qubits,
        coupling_map=edges,
        native_gates=gates,
        executor="mock",
        queue_length=0,
        created=None,
        updated=None,
    )


def test_native_gates_on_coupling_map() -> None:
    target = build_target(qpu(3, ((0, 1), (1, 2)), ("rz", "sx", "cz", "no_such_gate")))
    assert set(target.operation_names) == {"rz", "sx", "cz", "measure"}
    assert target.num_qubits == 3
    assert sorted(target.build_coupling_map().get_edges()) == [(0, 1), (1, 2)]
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.cx(0, 2)
    circuit.measure(range(3), range(3))
    compiled = transpile(circuit, target=target)
    assert set(compiled.count_ops()) <= {"rz", "sx", "cz", "measure", "x"} | {"barrier"}


def test_fallback_is_generic_all_to_all() -> None:
    target = build_target(qpu(4))
    assert set(DEFAULT_GATES) | {"measure"} == set(target.operation_names)
    assert target.num_qubits == 4
    assert target.build_coupling_map() is None
    assert target.instruction_supported("cx", (0, 3))
