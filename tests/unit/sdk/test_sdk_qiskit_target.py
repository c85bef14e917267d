"""Targets built from a QPU's reported qubits, coupling map, native gates and calibration.

The capabilities come from the drivers' own code (the executors' `capabilities()` turned
into the hello message, as the daemon does, then into the Qpu resource the server serves),
so a change on either side that breaks the Target fails here.
"""

from typing import Any

from qiskit import QuantumCircuit, transpile

from qpi.driver.capabilities import hello_fields
from qpi.driver.executors._quantify_device import load_mapping
from qpi.driver.executors._simulator import SIMULATOR_GATES
from qpi.driver.executors.mock import MockExecutor
from qpi.driver.executors.qblox import EXAMPLE_DEVICE_CONFIG, QbloxExecutor
from qpi.sdk import Qpu
from qpi.sdk.qiskit._target import DEFAULT_GATES, build_target
from qpi.v1 import qpu_pb2


def served_qpu(capabilities: dict[str, Any], num_qubits: int) -> Qpu:
    """The Qpu the SDK receives once a driver with these capabilities said hello."""
    fields = hello_fields(capabilities)
    message = qpu_pb2.Qpu(
        id="q",
        name="device",
        num_qubits=num_qubits,
        native_gates=fields["native_gates"],
        coupling_map=fields["coupling_map"],
        capabilities=fields["capabilities"],
    )
    return Qpu._from_proto(message)


def qblox_capabilities() -> dict[str, Any]:
    """What the qblox executor reports for the shipped dummy config (no instrument)."""
    executor = QbloxExecutor.__new__(QbloxExecutor)
    executor.device_config = load_mapping(EXAMPLE_DEVICE_CONFIG)
    executor.num_qubits = 3
    return executor.capabilities()


def two_qubit_pairs(circuit: QuantumCircuit) -> set[tuple[int, int]]:
    return {
        (circuit.find_bit(item.qubits[0]).index, circuit.find_bit(item.qubits[1]).index)
        for item in circuit.data
        if item.operation.num_qubits == 2 and item.operation.name != "barrier"
    }


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
    three_qubit = {"ccx", "cswap"}  # transpile refuses them next to a coupling map
    assert set(DEFAULT_GATES) - three_qubit | {"measure"} == set(target.operation_names)
    assert target.num_qubits == 4
    assert len(target.build_coupling_map().get_edges()) == 12
    assert target.instruction_supported("cx", (0, 3))
    assert target.instruction_supported("cx", (3, 0))
    circuit = QuantumCircuit(3, 3)
    circuit.ccx(0, 1, 2)
    circuit.measure(range(3), range(3))
    assert "ccx" not in transpile(circuit, target=target).count_ops()


def test_unknown_width_keeps_global_gates() -> None:
    target = build_target(qpu(0))
    assert target.build_coupling_map() is None
    assert "ccx" in target.operation_names


def test_builtin_executor_gates_give_one_measure_and_reset() -> None:
    # The built-in executors list measure/reset/barrier/delay among their native gates;
    # adding measure twice raised "Instruction measure is already in the target".
    caps = MockExecutor.__new__(MockExecutor).capabilities()
    assert "measure" in caps["native_gates"]
    assert caps["coupling_map"] == []
    target = build_target(served_qpu(caps, 4))
    assert "measure" in target.operation_names
    assert "reset" in target.operation_names
    assert not {"barrier", "delay"} & set(target.operation_names)
    assert set(target.operation_names) - {"measure", "reset"} <= set(SIMULATOR_GATES)
    assert target.instruction_supported("cx", (3, 0))  # simulators are all-to-all
    assert target.qargs_for_operation_name("measure") == {(0,), (1,), (2,), (3,)}


def test_qblox_target_follows_the_device_config() -> None:
    caps = qblox_capabilities()
    assert caps["meas_levels"] == [1, 2]
    assert sorted(map(tuple, caps["coupling_map"])) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    target = build_target(served_qpu(caps, 3))
    assert target.num_qubits == 3
    assert target.qargs_for_operation_name("cz") == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert not target.instruction_supported("cx", (0, 2))
    assert "ccx" not in target.operation_names
    # Durations from the config: rxy 20 ns, measure = acq_delay + integration_time,
    # CZ square pulse 20 ns, virtual Z free.
    assert target["x"][(1,)].duration == 20e-9
    assert target["rz"][(1,)].duration == 0.0
    assert target["measure"][(2,)].duration == 100e-9 + 1e-6
    assert target["reset"][(0,)].duration == 200e-6
    assert target["cz"][(2, 1)].duration == 20e-9
    assert target["cx"][(0, 1)].error is None


def test_transpile_never_uses_an_uncoupled_qblox_pair() -> None:
    target = build_target(served_qpu(qblox_capabilities(), 3))
    ghz = QuantumCircuit(3, 3)
    ghz.h(0)
    ghz.cx(0, 1)
    ghz.cx(0, 2)  # (0, 2) is not coupled on the device: needs routing
    ghz.cx(2, 0)
    ghz.measure(range(3), range(3))
    for level in (0, 1, 2, 3):
        compiled = transpile(ghz, target=target, optimization_level=level, seed_transpiler=7)
        pairs = two_qubit_pairs(compiled)
        assert pairs, compiled
        assert pairs <= {(0, 1), (1, 0), (1, 2), (2, 1)}, (level, pairs)


def test_reported_errors_reach_the_target() -> None:
    caps = {
        "num_qubits": 2,
        "native_gates": ["sx", "rz", "cz", "measure"],
        "meas_levels": [2],
        "coupling_map": [[0, 1]],
        "instructions": [
            {"name": "sx", "qubits": [0], "duration": 3.5e-8, "error": 1e-4},
            {"name": "cz", "qubits": [0, 1], "error": 0.01},
        ],
    }
    target = build_target(served_qpu(caps, 2))
    assert target["sx"][(0,)].error == 1e-4
    assert target["sx"][(1,)] is None
    assert target["cz"][(0, 1)].error == 0.01
    assert target["cz"][(0, 1)].duration is None
    assert not target.instruction_supported("cz", (1, 0))
