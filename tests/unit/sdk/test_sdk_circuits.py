"""Circuit inputs → ``Circuit`` protos: QASM, Qiskit circuits, dicts, parameter bindings."""

import pytest
from qiskit import QuantumCircuit, qasm3
from qiskit.circuit import Parameter

from qpi.sdk._circuits import bind, build_payload, parameter_sets, to_circuit_proto, to_qasm
from qpi.v1 import job_pb2

QASM2 = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q[0] -> c[0];\n'
)


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def test_quantum_circuit_is_serialised_as_qasm3_that_round_trips() -> None:
    text = to_qasm(bell())
    assert text.startswith("OPENQASM 3.0;")
    assert qasm3.loads(text).count_ops() == bell().count_ops()


def test_strings_pass_through_and_other_types_fail() -> None:
    assert to_qasm(QASM2) == QASM2
    with pytest.raises(TypeError):
        to_qasm(42)


def test_parameter_sets_accept_flat_and_nested_lists() -> None:
    assert [list(s.values) for s in parameter_sets([0.1, 2])] == [[0.1, 2.0]]
    assert [list(s.values) for s in parameter_sets([[1], [2]])] == [[1.0], [2.0]]
    assert parameter_sets(None) == []


def test_dict_entry_with_mapping_binds_client_side() -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1, 1)
    circuit.rx(theta, 0)
    circuit.measure(0, 0)
    proto = to_circuit_proto({"circuit": circuit, "parameter_values": {"theta": 0.5}, "shots": 7})
    assert "theta" not in proto.qasm
    assert proto.shots == 7
    assert len(proto.parameter_values) == 0


def test_dict_entry_with_lists_sends_parameter_sets() -> None:
    proto = to_circuit_proto({"qasm": QASM2, "parameter_values": [[1.0], [2.0]]})
    assert proto.qasm == QASM2
    assert [list(s.values) for s in proto.parameter_values] == [[1.0], [2.0]]


def test_dict_entry_needs_circuit_or_qasm() -> None:
    with pytest.raises(ValueError, match="circuit"):
        to_circuit_proto({"shots": 3})


def test_bind_by_name_parameter_or_order() -> None:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(1)
    circuit.rx(a, 0)
    circuit.ry(b, 0)
    assert not bind(circuit, {"a": 1.0, b: 2.0}).parameters
    assert not bind(circuit, [1.0, 2.0]).parameters


def test_build_payload_accepts_single_circuit_and_sets_options() -> None:
    payload = build_payload(bell(), shots=100, meas_level=1, meas_return="avg")
    assert len(payload.circuits) == 1
    assert payload.shots == 100
    assert payload.meas_level == 1
    assert payload.meas_return == job_pb2.MEAS_RETURN_AVG


def test_build_payload_rejects_empty_and_bad_meas_return() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_payload([], shots=1, meas_level=2, meas_return="single")
    with pytest.raises(ValueError, match="meas_return"):
        build_payload([QASM2], shots=1, meas_level=2, meas_return="median")
