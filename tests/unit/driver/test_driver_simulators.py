"""Unit tests of the payload, QASM loading and the mock/qiskit_aer executors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from qpi.driver.executors.registry import ExecutorNotAvailable, check_available, resolve_executor
from qpi.driver.payload import CircuitPayload, JobPayload
from qpi.driver.results import dense_counts, outcomes_from_bits, save_dataset
from qpi.v1 import job_pb2

BELL2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""
BELL3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""
PARAM3 = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
"""
X_ON_1 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nx q[1];\nmeasure q -> c;\n'


@pytest.fixture(scope="module", params=["mock", "qiskit_aer"])
def executor(request: pytest.FixtureRequest):
    instance = resolve_executor(request.param)()
    yield instance
    instance.close()


def run(executor, *circuits: CircuitPayload | str, **kwargs):
    items = [c if isinstance(c, CircuitPayload) else CircuitPayload(c) for c in circuits]
    payload = JobPayload(items, **kwargs)
    return executor.process_result(executor.execute(payload), payload.id)


@pytest.mark.parametrize("source", [BELL2, BELL3])
def test_bell_counts(executor, source: str):
    result = run(executor, source, shots=2000)
    counts = result["counts"]
    assert list(counts) == ["00", "01", "10", "11"]
    assert counts["01"] == counts["10"] == 0
    assert 800 < counts["00"] < 1200
    assert counts["00"] + counts["11"] == 2000
    assert result["shots"] == 2000
    assert result["success"] is True
    assert result["backend"] == executor.name
    assert result["circuit_results"][0]["counts"] == counts


def test_little_endian_keys(executor):
    assert run(executor, X_ON_1, shots=10)["counts"] == {"00": 0, "01": 0, "10": 10, "11": 0}


def test_parameter_sets_and_per_circuit_shots(executor):
    sets = CircuitPayload(PARAM3, parameter_values=[[0.0], [math.pi]], shots=50)
    result = run(executor, sets, BELL2, shots=100)
    entries = result["circuit_results"]
    assert [e["shots"] for e in entries] == [50, 50, 100]
    assert entries[0]["counts"] == {"0": 50, "1": 0}
    assert entries[1]["counts"] == {"0": 0, "1": 50}
    assert result["shots"] == 50
    assert result["counts"] == entries[0]["counts"]


def test_meas_level_1_shapes(executor):
    single = run(executor, X_ON_1, shots=20, meas_level=1)
    memory = np.array(single["memory"])
    assert memory.shape == (20, 2, 2)
    assert np.allclose(memory[:, 0].mean(axis=0), [0.1, 0.05], atol=0.05)
    assert np.allclose(memory[:, 1].mean(axis=0), [0.9, 0.85], atol=0.05)
    avg = run(executor, X_ON_1, shots=20, meas_level=1, meas_return="avg")
    assert np.array(avg["memory"]).shape == (1, 2, 2)


def test_meas_level_0_is_rejected(executor):
    with pytest.raises(ValueError, match=f"meas_level 0 is not supported by the {executor.name}"):
        run(executor, BELL2, meas_level=0)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("qreg q[1];", "Failed to parse QASM circuit 0: missing 'OPENQASM 2.0;'"),
        ("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];", "Failed to parse QASM circuit 0: "),
        ("OPENQASM 4.0;\nqreg q[1];", "Failed to parse QASM circuit 0: unsupported OpenQASM"),
        (PARAM3, "circuit 0 has unbound parameters: theta"),
        ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[30];', "circuit 0 uses 30 qubits but"),
    ],
)
def test_user_errors(executor, source: str, message: str):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        run(executor, source)


def test_parameter_count_mismatch(executor):
    with pytest.raises(ValueError, match="has 1 parameters but parameter set 0 has 2 values"):
        run(executor, CircuitPayload(PARAM3, parameter_values=[[1.0, 2.0]]))


def test_payload_from_proto_defaults():
    message = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=BELL2)])
    payload = JobPayload.from_proto("job1", message)
    assert (payload.id, payload.shots, payload.meas_level, payload.meas_return) == (
        "job1",
        1024,
        2,
        "single",
    )
    message = job_pb2.JobPayload(
        circuits=[job_pb2.Circuit(qasm=BELL2, shots=7, parameter_values=[{"values": [1.0]}])],
        meas_level=1,
        meas_return=job_pb2.MEAS_RETURN_AVG,
        acq_threshold=0.0,
    )
    payload = JobPayload.from_proto("job2", message)
    assert payload.meas_level == 1
    assert payload.meas_return == "avg"
    assert payload.acq_threshold == 0.0
    assert payload.acq_rotation is None
    assert payload.circuits[0].parameter_values == [[1.0]]
    assert payload.shots_for(0) == 7
    with pytest.raises(ValueError, match="at least one circuit"):
        JobPayload.from_proto("job3", job_pb2.JobPayload())


def test_payload_from_dict_variants():
    payload = JobPayload.from_dict({"circuits": [{"qasm": BELL2}, BELL3], "shots": 0})
    assert len(payload.circuits) == 2
    assert payload.shots == 1024
    assert JobPayload.from_dict({"circuit_qasm": BELL2}).circuits[0].circuit == BELL2


def test_counts_helpers():
    bits = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.uint8)
    assert outcomes_from_bits(bits) == {1: 2, 2: 1}
    assert dense_counts({1: 2, 2: 1}, 2) == {"00": 0, "01": 2, "10": 1, "11": 0}


def test_save_dataset_splits_complex(tmp_path):
    data = xr.Dataset(
        {"iq": (("shot",), np.array([1 + 2j, 3 - 1j]))}, attrs={"flag": True, "map": [1, 2]}
    )
    path = tmp_path / "raw" / "job.nc"
    save_dataset(data, path)
    loaded = xr.open_dataset(path, engine="h5netcdf")
    assert loaded["iq_real"].values.tolist() == [1.0, 3.0]
    assert loaded["iq_imag"].values.tolist() == [2.0, -1.0]
    loaded.close()


def test_registry_errors():
    with pytest.raises(ExecutorNotAvailable, match="unknown executor 'nope'"):
        check_available("nope")
    with pytest.raises(ExecutorNotAvailable, match="not a subclass"):
        resolve_executor("qpi.driver.payload:JobPayload")
    with pytest.raises(ValueError, match="^the presto executor is not implemented yet$"):
        resolve_executor("presto")().execute(JobPayload([CircuitPayload(BELL2)]))


@pytest.mark.hardware_sim
def test_qblox_executor_rejects_jobs_precisely(tmp_path, monkeypatch):
    """Precise errors from the qblox executor (its dummy-cluster runs: test_qblox_executor)."""
    pytest.importorskip("qblox_scheduler")
    monkeypatch.chdir(tmp_path)
    executor = resolve_executor("qblox")(is_dummy=True, data_dir=tmp_path)
    try:
        with pytest.raises(ValueError, match="^meas_level 0 is not supported by the qblox"):
            executor.execute(JobPayload([CircuitPayload(BELL2)], meas_level=0))
        too_wide = BELL2.replace("[2];", "[5];")
        with pytest.raises(ValueError, match="^circuit 0 uses 5 qubits but the device has 3$"):
            executor.execute(JobPayload([CircuitPayload(too_wide)]))
    finally:
        executor.close()


TWO_REGISTERS = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg a[1];
creg b[2];
x q[2];
measure q[0] -> a[0];
measure q[1] -> b[0];
measure q[2] -> b[1];
"""


@pytest.mark.parametrize("meas_level", [1, 2])
def test_every_result_entry_carries_a_qiskit_header(executor, meas_level: int):
    result = run(executor, BELL2, TWO_REGISTERS, shots=50, meas_level=meas_level)
    bell, split = (entry["header"] for entry in result["circuit_results"])
    assert bell == {
        "memory_slots": 2,
        "creg_sizes": [["c", 2]],
        "clbit_labels": [["c", 0], ["c", 1]],
    }
    assert split == {
        "memory_slots": 3,
        "creg_sizes": [["a", 1], ["b", 2]],
        "clbit_labels": [["a", 0], ["b", 0], ["b", 1]],
    }


def test_header_formats_counts_as_qiskit_expects(executor):
    from qiskit.result import Result

    entry = run(executor, TWO_REGISTERS, shots=20)["circuit_results"][0]
    hex_counts = {hex(int(k, 2)): v for k, v in entry["counts"].items() if v}
    experiment = {"shots": 20, "success": True, "data": {"counts": hex_counts}}
    experiment["header"] = entry["header"]
    result = Result.from_dict(
        {"backend_name": "x", "backend_version": "0", "job_id": "j", "success": True,
         "results": [experiment]}
    )  # fmt: skip
    assert result.get_counts() == {"10 0": 20}  # register b = '10', register a = '0'


def test_repeated_circuits_reuse_their_compiled_runs(executor, monkeypatch: pytest.MonkeyPatch):
    """A job sending circuits (and parameter sets) that ran before is not transpiled
    again; new shots still apply, and other parameter values compile anew."""
    executor._compiled.clear()
    compiled: list[object] = []
    original = executor.pass_manager.run
    monkeypatch.setattr(executor.pass_manager, "run", lambda c: compiled.append(c) or original(c))
    first = run(executor, X_ON_1, shots=10)
    again = run(executor, X_ON_1, shots=30)
    assert len(compiled) == 1
    assert first["counts"]["10"] == 10
    assert again["counts"]["10"] == 30
    swept = CircuitPayload(PARAM3, parameter_values=[[0.0], [math.pi]])
    run(executor, swept, shots=5)
    run(executor, CircuitPayload(PARAM3, parameter_values=[[0.0], [math.pi]]), shots=5)
    assert len(compiled) == 3  # two runs of the sweep, once
    moved = run(executor, CircuitPayload(PARAM3, parameter_values=[[math.pi]]), shots=7)
    assert len(compiled) == 4
    assert moved["counts"]["1"] == 7


def test_compiled_runs_are_bounded(executor, monkeypatch: pytest.MonkeyPatch):
    from qpi.driver.executors import _simulator

    executor._compiled.clear()
    monkeypatch.setattr(_simulator, "COMPILED_JOBS", 3)
    for angle in range(6):
        run(executor, CircuitPayload(PARAM3, parameter_values=[[float(angle)]]), shots=1)
    assert len(executor._compiled) == 3
    monkeypatch.setattr(_simulator, "COMPILED_RUNS", 4)
    run(executor, CircuitPayload(PARAM3, parameter_values=[[0.1]] * 3), shots=1)
    assert sum(map(len, executor._compiled.values())) <= 4


def test_a_circuit_that_failed_is_rejected_again(executor):
    bad = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\n'
    for _ in range(2):
        with pytest.raises(ValueError, match="Failed to parse QASM circuit 0"):
            run(executor, bad)
