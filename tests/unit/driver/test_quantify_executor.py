"""The quantify executor on a qblox-instruments dummy cluster (shipped example configs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("quantify_scheduler")
pytest.importorskip("qblox_instruments")

from qpi.driver.executors._quantify_device import (  # noqa: E402
    ConfigError,
    convert_numbers,
    load_mapping,
)
from qpi.driver.executors.quantify import (  # noqa: E402
    EXAMPLE_DEVICE_CONFIG,
    EXAMPLE_HARDWARE_CONFIG,
    QuantifyExecutor,
    discriminate,
    dummy_iq,
)
from qpi.driver.executors.registry import resolve_executor  # noqa: E402
from qpi.driver.payload import CircuitPayload, JobPayload  # noqa: E402

pytestmark = pytest.mark.hardware_sim

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


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuantifyExecutor]:
    # The dummy assembler writes tmp files into the CWD, so the module runs in a temp dir.
    workdir = tmp_path_factory.mktemp("quantify")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        instance = resolve_executor("quantify")(
            data_dir=workdir,
            is_dummy=True,
            device_config=EXAMPLE_DEVICE_CONFIG,
            hardware_config=EXAMPLE_HARDWARE_CONFIG,
            job_timeout=10.0,
        )
        assert isinstance(instance, QuantifyExecutor)
        yield instance
        instance.close()


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def run(executor: QuantifyExecutor, *circuits: str, **kwargs: object) -> dict:
    payload = JobPayload([CircuitPayload(c) for c in circuits], **kwargs)  # type: ignore[arg-type]
    return executor.process_result(executor.execute(payload), payload.id)


def test_device_from_example_configs(executor: QuantifyExecutor) -> None:
    assert executor.num_qubits == 3
    assert executor.setup.qubits == ["q0", "q1", "q2"]
    assert executor.setup.edges == {"q0_q1", "q1_q2"}
    q1 = executor.setup.device.get_element("q1")
    assert q1.clock_freqs.readout() == pytest.approx(6.01e9)
    assert q1.measure.integration_time() == pytest.approx(1e-6)
    assert set(executor.clusters) == {"cluster0"}


def test_x_on_q0_counts_all_keys(executor: QuantifyExecutor) -> None:
    result = run(executor, X_ON_0, shots=64)
    assert result["backend"] == "quantify"
    assert result["success"] is True
    assert list(result["counts"]) == ["00", "01", "10", "11"]
    assert result["counts"] == {"00": 0, "01": 64, "10": 0, "11": 0}
    assert result["shots"] == 64


def test_bell_counts_sum_to_shots(executor: QuantifyExecutor) -> None:
    result = run(executor, BELL, shots=200)
    counts = result["counts"]
    assert sum(counts.values()) == 200
    assert counts["01"] == counts["10"] == 0
    assert counts["00"] > 0
    assert counts["11"] > 0


def test_every_supported_gate_and_several_runs(executor: QuantifyExecutor) -> None:
    result = run(executor, EVERY_GATE, DELAY3, X_ON_0, shots=50)
    assert len(result["circuit_results"]) == 3
    first, second, third = result["circuit_results"]
    assert sum(first["counts"].values()) == 50
    assert len(first["counts"]) == 8
    assert sum(second["counts"].values()) == 50
    assert second["counts"]["00"] == second["counts"]["01"] == 0
    assert third["counts"]["01"] == 50


def test_software_discrimination_override(executor: QuantifyExecutor) -> None:
    result = run(executor, X_ON_0, shots=40, acq_rotation=30.0, acq_threshold=0.1)
    assert result["counts"]["01"] == 40


@pytest.mark.parametrize(("meas_return", "rows"), [("single", 32), ("avg", 1)])
def test_meas_level_1_iq_memory(executor: QuantifyExecutor, meas_return: str, rows: int) -> None:
    result = run(executor, X_ON_0, shots=32, meas_level=1, meas_return=meas_return)
    memory = np.asarray(result["memory"])
    assert memory.shape == (rows, 2, 2)
    assert np.isfinite(memory).all()
    # Clbit 0 saw |1>, clbit 1 saw |0>: the blobs sit either side of the threshold 0.
    assert (memory[:, 0, 0] > 0).all()
    assert (memory[:, 1, 0] < 0).all()


def test_meas_level_0_rejected(executor: QuantifyExecutor) -> None:
    with pytest.raises(ValueError, match=r"^meas_level 0 is not supported by the quantify"):
        run(executor, X_ON_0, meas_level=0)


def test_unsupported_gate(executor: QuantifyExecutor) -> None:
    source = HEADER + "qreg q[2];\ncreg c[2];\nrzz(0.2) q[0],q[1];\nmeasure q -> c;\n"
    with pytest.raises(ValueError) as info:
        run(executor, source)
    assert str(info.value) == "Gate 'rzz' is not supported by the quantify executor"


def test_too_many_qubits(executor: QuantifyExecutor) -> None:
    source = HEADER + "qreg q[4];\ncreg c[4];\nmeasure q -> c;\n"
    with pytest.raises(ValueError) as info:
        run(executor, source)
    assert str(info.value) == "circuit 0 uses 4 qubits but the device has 3"


def test_uncoupled_cz(executor: QuantifyExecutor) -> None:
    source = HEADER + "qreg q[3];\ncreg c[3];\ncz q[0],q[2];\nmeasure q -> c;\n"
    with pytest.raises(ValueError, match="q0 and q2 are not coupled"):
        run(executor, source)


def test_example_configs_parse() -> None:
    from quantify_scheduler.backends.qblox_backend import QbloxHardwareCompilationConfig

    device = load_mapping(EXAMPLE_DEVICE_CONFIG)
    assert {"q0", "q1", "q2", "q0_q1", "q1_q2"} <= set(device)
    hardware = load_mapping(EXAMPLE_HARDWARE_CONFIG)
    QbloxHardwareCompilationConfig.model_validate(hardware)


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_mapping(tmp_path / "missing.yml")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must contain a mapping"):
        load_mapping(bad)


def test_numeric_strings_converted() -> None:
    assert convert_numbers({"a": "5e9", "b": ["1.5", "x"], "c": "q0"}) == {
        "a": 5e9,
        "b": [1.5, "x"],
        "c": "q0",
    }


def test_dummy_iq_round_trips_through_discrimination() -> None:
    bits = np.array([0, 1, 1, 0, 1], dtype=np.uint8)
    points = dummy_iq(bits, 37.0, 0.2, np.random.default_rng(1))
    assert discriminate(points, 37.0, 0.2).tolist() == bits.tolist()


def test_hardware_thresholding(executor: QuantifyExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the device config set acq_threshold/acq_rotation on q0's measure.
    monkeypatch.setattr(executor.setup, "thresholded", ["q0"])
    payload = JobPayload([CircuitPayload(BELL)], shots=60)
    dataset = executor.execute(payload)
    assert dataset.attrs["acq_protocol"] == "ThresholdedAcquisition"
    counts = executor.process_result(dataset, payload.id)["counts"]
    assert counts["00"] + counts["11"] == 60


def test_controlled_rotations_are_lowered_through_their_definitions(
    executor: QuantifyExecutor,
) -> None:
    """crz and cp (part of the supported gate set) run via cx + single-qubit rotations."""
    qasm = (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
        "x q[0];\ncrz(0.3) q[0],q[1];\ncp(0.2) q[1],q[2];\nmeasure q -> c;\n"
    )
    result = run(executor, qasm, shots=64)
    assert result["counts"]["001"] == 64  # the phases leave |q2 q1 q0> = |001>


def test_results_carry_headers_and_capabilities_follow_the_config(
    executor: QuantifyExecutor,
) -> None:
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
