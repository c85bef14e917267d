"""What executors announce in the hello: coupling, durations, meas levels."""

from __future__ import annotations

from qpi.driver.capabilities import device_config_capabilities, hello_fields
from qpi.driver.executors._quantify_device import load_mapping
from qpi.driver.executors._quantify_gates import QUANTIFY_GATES
from qpi.driver.executors.mock import MockExecutor
from qpi.driver.executors.presto import PrestoExecutor
from qpi.driver.executors.quantify import EXAMPLE_DEVICE_CONFIG, QuantifyExecutor


def test_simulators_are_all_to_all_with_levels_1_and_2() -> None:
    caps = MockExecutor.__new__(MockExecutor).capabilities()
    assert caps["num_qubits"] == 16
    assert caps["coupling_map"] == []
    assert caps["meas_levels"] == [1, 2]
    assert caps["instructions"] == []


def test_default_executor_announces_level_2_only() -> None:
    caps = PrestoExecutor().capabilities()
    assert caps["meas_levels"] == [2]
    assert hello_fields(caps)["num_qubits"] == 0


def test_quantify_config_coupling_in_both_directions() -> None:
    executor = QuantifyExecutor.__new__(QuantifyExecutor)
    executor.device_config = load_mapping(EXAMPLE_DEVICE_CONFIG)
    executor.num_qubits = 3
    caps = executor.capabilities()
    assert caps["num_qubits"] == 3
    assert caps["meas_levels"] == [1, 2]
    assert caps["coupling_map"] == [[0, 1], [1, 0], [1, 2], [2, 1]]
    names = {(e["name"], tuple(e["qubits"])) for e in caps["instructions"]}
    assert ("cz", (1, 2)) in names
    assert ("cx", (2, 1)) in names
    assert ("cz", (0, 2)) not in names
    assert not any(e["name"] in ("barrier", "delay") for e in caps["instructions"])


def test_durations_only_where_the_config_states_them() -> None:
    config = {
        "q0": {"rxy": {"duration": "40e-9"}, "measure": {"acq_delay": 1e-7}},
        "q1": {},
        "q0_q1": {"cz": {"square_duration": 6e-8}},
    }
    caps = device_config_capabilities(config, QUANTIFY_GATES, {2, 1})
    by_key = {(e["name"], tuple(e["qubits"])): e for e in caps["instructions"]}
    assert by_key[("x", (0,))]["duration"] == 40e-9
    assert "duration" not in by_key[("x", (1,))]
    assert "duration" not in by_key[("measure", (0,))]  # integration_time missing
    assert by_key[("rz", (1,))]["duration"] == 0.0
    assert by_key[("cz", (1, 0))]["duration"] == 6e-8
    assert "duration" not in by_key[("swap", (0, 1))]
    message = hello_fields(caps)["capabilities"]
    assert list(message.meas_levels) == [1, 2]
    assert len(message.instructions) == len(caps["instructions"])
