"""The qblox executor (qblox-scheduler 1.0.x) on a qblox-instruments dummy cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qblox_scheduler")
pytest.importorskip("qblox_instruments")

from qpi.driver.executors._qblox_device import (  # noqa: E402
    CompositeSquareEdge,
    TransmonElement,
    build_qblox_device,
    normalise_hardware_config,
)
from qpi.driver.executors._quantify_device import ConfigError, load_mapping  # noqa: E402
from qpi.driver.executors.qblox import (  # noqa: E402
    CLUSTER_PREFIX,
    EXAMPLE_DEVICE_CONFIG,
    EXAMPLE_HARDWARE_CONFIG,
    QbloxExecutor,
)
from qpi.driver.executors.registry import resolve_executor  # noqa: E402
from qpi.driver.payload import CircuitPayload, JobPayload  # noqa: E402

pytestmark = pytest.mark.hardware_sim

CONFIGS = EXAMPLE_DEVICE_CONFIG.parent
HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
X_ON_0 = HEADER + "qreg q[2];\ncreg c[2];\nx q[0];\nmeasure q -> c;\n"
BELL = HEADER + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
EVERY_GATE = (
    HEADER
    + """qreg q[3];
creg c[3];
reset q[0];
x q[0]; y q[1]; z q[2]; h q[0]; s q[1]; sdg q[2]; t q[0]; tdg q[1];
sx q[2]; sxdg q[0]; rx(0.3) q[1]; ry(0.4) q[2]; rz(0.5) q[0]; p(0.6) q[1];
u(0.1,0.2,0.3) q[2];
barrier q;
cz q[1],q[0];
cx q[1],q[2];
swap q[0],q[1];
measure q[0] -> c[0];
x q[0];
measure q -> c;
"""
)
DELAY3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
U(0.1, 0.2, 0.3) q[0];
delay[100ns] q[0];
reset q[1];
x q[1];
c = measure q;
"""
# q0 is measured twice: the first result (1) must not be averaged with the second (0).
MEASURE_TWICE = HEADER + "qreg q[1];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\n"
MEASURE_TWICE += "x q[0];\nmeasure q[0] -> c[1];\n"


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QbloxExecutor]:
    workdir = tmp_path_factory.mktemp("qblox")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        instance = resolve_executor("qblox")(data_dir=workdir, is_dummy=True, job_timeout=10.0)
        assert isinstance(instance, QbloxExecutor)
        yield instance
        instance.close()


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def run(executor: QbloxExecutor, *circuits: str, **kwargs: object) -> dict:
    payload = JobPayload([CircuitPayload(c) for c in circuits], **kwargs)  # type: ignore[arg-type]
    return executor.process_result(executor.execute(payload), payload.id)


def test_device_from_default_example_configs(executor: QbloxExecutor) -> None:
    assert executor.device_config_path == EXAMPLE_DEVICE_CONFIG
    assert executor.hardware_config_path == EXAMPLE_HARDWARE_CONFIG
    assert executor.num_qubits == 3
    assert executor.setup.qubits == ["q0", "q1", "q2"]
    assert executor.setup.edges == {"q0_q1", "q1_q2"}
    q1 = executor.setup.device.get_element("q1")
    assert isinstance(q1, TransmonElement)
    assert q1.clock_freqs.readout == pytest.approx(6.01e9)
    assert q1.measure.integration_time == pytest.approx(1e-6)
    assert q1.ports.microwave == "q1:mw"
    assert isinstance(executor.setup.device.get_edge("q0_q1"), CompositeSquareEdge)
    # Clusters are renamed so they cannot collide with the quantify executor's.
    assert set(executor.clusters) == {f"{CLUSTER_PREFIX}cluster0"}


def test_x_on_q0_counts_all_keys(executor: QbloxExecutor) -> None:
    result = run(executor, X_ON_0, shots=64)
    assert result["backend"] == "qblox"
    assert result["success"] is True
    assert list(result["counts"]) == ["00", "01", "10", "11"]
    assert result["counts"] == {"00": 0, "01": 64, "10": 0, "11": 0}
    assert result["shots"] == 64


def test_bell_counts_sum_to_shots(executor: QbloxExecutor) -> None:
    result = run(executor, BELL, shots=400)
    counts = result["counts"]
    assert sum(counts.values()) == 400
    assert counts["01"] == counts["10"] == 0
    # Binomial(400, 1/2): 150..250 is more than 5 standard deviations wide.
    assert 150 <= counts["00"] <= 250
    assert counts["00"] + counts["11"] == 400


def test_every_supported_gate_and_per_circuit_shots(executor: QbloxExecutor) -> None:
    payload = JobPayload(
        [CircuitPayload(EVERY_GATE), CircuitPayload(DELAY3), CircuitPayload(X_ON_0, shots=20)],
        shots=50,
    )
    result = executor.process_result(executor.execute(payload), payload.id)
    assert len(result["circuit_results"]) == 3
    first, second, third = result["circuit_results"]
    assert sum(first["counts"].values()) == 50
    assert len(first["counts"]) == 8
    assert sum(second["counts"].values()) == 50
    assert second["counts"]["00"] == second["counts"]["01"] == 0
    assert third["counts"]["01"] == 20
    assert third["shots"] == 20


def test_repeated_measurements_keep_their_own_results(executor: QbloxExecutor) -> None:
    assert run(executor, MEASURE_TWICE, shots=30)["counts"]["01"] == 30


def test_software_discrimination_override(executor: QbloxExecutor) -> None:
    result = run(executor, X_ON_0, shots=40, acq_rotation=30.0, acq_threshold=0.1)
    assert result["counts"]["01"] == 40


@pytest.mark.parametrize(("meas_return", "rows"), [("single", 32), ("avg", 1)])
def test_meas_level_1_iq_memory(executor: QbloxExecutor, meas_return: str, rows: int) -> None:
    result = run(executor, X_ON_0, shots=32, meas_level=1, meas_return=meas_return)
    memory = np.asarray(result["memory"])
    assert memory.shape == (rows, 2, 2)
    assert np.isfinite(memory).all()
    # Clbit 0 saw |1>, clbit 1 saw |0>: the blobs sit either side of the threshold 0.
    assert (memory[:, 0, 0] > 0).all()
    assert (memory[:, 1, 0] < 0).all()


def test_meas_level_0_rejected(executor: QbloxExecutor) -> None:
    with pytest.raises(ValueError, match=r"^meas_level 0 is not supported by the qblox"):
        run(executor, X_ON_0, meas_level=0)


def test_unsupported_gate(executor: QbloxExecutor) -> None:
    source = HEADER + "qreg q[2];\ncreg c[2];\nrzz(0.2) q[0],q[1];\nmeasure q -> c;\n"
    with pytest.raises(ValueError) as info:
        run(executor, source)
    assert str(info.value) == "Gate 'rzz' is not supported by the qblox executor"


def test_too_many_qubits(executor: QbloxExecutor) -> None:
    source = HEADER + "qreg q[4];\ncreg c[4];\nmeasure q -> c;\n"
    with pytest.raises(ValueError) as info:
        run(executor, source)
    assert str(info.value) == "circuit 0 uses 4 qubits but the device has 3"


def test_uncoupled_cz(executor: QbloxExecutor) -> None:
    source = HEADER + "qreg q[3];\ncreg c[3];\ncz q[0],q[2];\nmeasure q -> c;\n"
    with pytest.raises(ValueError, match="q0 and q2 are not coupled"):
        run(executor, source)


def test_hardware_thresholding(executor: QbloxExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the device config set acq_threshold/acq_rotation on q0's measure (both 0).
    monkeypatch.setattr(executor.setup, "thresholded", ["q0"])
    payload = JobPayload([CircuitPayload(BELL)], shots=60)
    dataset = executor.execute(payload)
    assert dataset.attrs["acq_protocol"] == "ThresholdedIQIntegration"
    counts = executor.process_result(dataset, payload.id)["counts"]
    assert counts["00"] + counts["11"] == 60
    assert counts["00"] > 0
    assert counts["11"] > 0


def test_controlled_rotations_are_lowered_through_their_definitions(
    executor: QbloxExecutor,
) -> None:
    qasm = (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
        "x q[0];\ncrz(0.3) q[0],q[1];\ncp(0.2) q[1],q[2];\nmeasure q -> c;\n"
    )
    assert run(executor, qasm, shots=64)["counts"]["001"] == 64


def test_example_configs_parse() -> None:
    from qblox_scheduler.backends.qblox_backend import QbloxHardwareCompilationConfig

    device = load_mapping(EXAMPLE_DEVICE_CONFIG)
    assert {"q0", "q1", "q2", "q0_q1", "q1_q2"} <= set(device)
    QbloxHardwareCompilationConfig.model_validate(load_mapping(EXAMPLE_HARDWARE_CONFIG))


def test_quantify_configs_load_for_qblox() -> None:
    """A quantify device/hardware config pair builds the same qblox-scheduler device."""
    hardware = normalise_hardware_config(
        load_mapping(CONFIGS / "quantify.hardware.example.json"), "x_"
    )
    assert hardware["config_type"] == "QbloxHardwareCompilationConfig"
    assert set(hardware["hardware_description"]) == {"x_cluster0"}
    assert ["x_cluster0.module2.complex_output_0", "q0:mw"] in hardware["connectivity"]["graph"]
    setup = build_qblox_device(
        load_mapping(CONFIGS / "quantify.device.example.yml"), hardware, "qpi_test_device"
    )
    assert setup.qubits == ["q0", "q1", "q2"]
    assert setup.edges == {"q0_q1", "q1_q2"}
    assert setup.device.get_element("q2").clock_freqs.f01 == pytest.approx(5.2e9)
    setup.device.generate_compilation_config()


def test_device_config_errors() -> None:
    hardware = load_mapping(EXAMPLE_HARDWARE_CONFIG)
    with pytest.raises(ConfigError, match=r"unknown parameter q0\.rxy\.amp"):
        build_qblox_device({"q0": {"rxy": {"amp": 1}}}, hardware, "qpi_bad")
    with pytest.raises(ConfigError, match=r"unknown submodule q0\.flux"):
        build_qblox_device({"q0": {"flux": {"a": 1}}}, hardware, "qpi_bad")
    with pytest.raises(ConfigError, match=r"invalid value for q0\.reset\.duration"):
        build_qblox_device({"q0": {"reset": {"duration": "soon"}}}, hardware, "qpi_bad")
    with pytest.raises(ConfigError, match=r"cannot add q0_q1"):
        build_qblox_device({"q0": {}, "q0_q1": {}}, hardware, "qpi_bad")
    with pytest.raises(ConfigError, match="invalid hardware config"):
        build_qblox_device({"q0": {}}, {"config_type": "QbloxHardwareCompilationConfig"}, "x")


def test_runs_next_to_the_quantify_executor(
    executor: QbloxExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both executors hold dummy clusters in one process and both keep working."""
    pytest.importorskip("quantify_scheduler")
    from qpi.driver.executors.quantify import QuantifyExecutor

    monkeypatch.chdir(tmp_path)
    quantify = QuantifyExecutor(data_dir=tmp_path, is_dummy=True, job_timeout=10.0)
    try:
        assert run(quantify, X_ON_0, shots=16)["counts"]["01"] == 16
        assert run(executor, X_ON_0, shots=16)["counts"]["01"] == 16
        assert run(quantify, BELL, shots=16)["backend"] == "quantify"
    finally:
        quantify.close()
    assert run(executor, X_ON_0, shots=16)["counts"]["01"] == 16


def test_results_carry_headers_and_capabilities_follow_the_config(executor: QbloxExecutor) -> None:
    result = run(executor, BELL, shots=20)
    assert result["circuit_results"][0]["header"] == {
        "memory_slots": 2,
        "creg_sizes": [["c", 2]],
        "clbit_labels": [["c", 0], ["c", 1]],
    }
    caps = executor.capabilities()
    assert caps["num_qubits"] == executor.num_qubits
    assert caps["meas_levels"] == [1, 2]
    # Only the config's edges (both directions): transpilers never target q0-q2.
    edges = {tuple(edge) for edge in caps["coupling_map"]}
    assert edges == {(0, 1), (1, 0), (1, 2), (2, 1)}
