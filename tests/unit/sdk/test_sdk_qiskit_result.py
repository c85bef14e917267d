"""QPI result dicts → Qiskit ``Result`` with padded keys, registers and memory."""

import json

import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from qpi.sdk import Job
from qpi.sdk.qiskit._result import header_for, to_qiskit_result
from qpi.v1 import job_pb2


def completed(result: dict[str, object]) -> Job:
    return Job._from_proto(
        job_pb2.Job(id="j1", state=job_pb2.Job.STATE_COMPLETED, result_json=json.dumps(result))
    )


def test_counts_keys_keep_their_width_without_header() -> None:
    job = completed({"circuit_results": [{"counts": {"000": 3, "001": 0, "100": 5}}]})
    result = to_qiskit_result(job, backend_name="b")
    assert result.get_counts() == {"000": 3, "001": 0, "100": 5}
    assert result.results[0].shots == 8
    assert result.backend_name == "b"
    assert result.job_id == "j1"


def test_header_splits_registers() -> None:
    circuit = QuantumCircuit(
        QuantumRegister(3), ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    )
    job = completed({"circuit_results": [{"counts": {"101": 2, "000": 1}, "shots": 3}]})
    result = to_qiskit_result(job, backend_name="b", headers=[header_for(circuit)])
    assert result.get_counts() == {"10 1": 2, "00 0": 1}


def test_one_experiment_per_entry_and_whole_dict_fallback() -> None:
    many = completed({"circuit_results": [{"counts": {"0": 1}}, {"counts": {"1": 2}}]})
    assert to_qiskit_result(many, backend_name="b").get_counts() == [{"0": 1}, {"1": 2}]
    flat = completed({"counts": {"01": 4}, "shots": 4})
    assert to_qiskit_result(flat, backend_name="b").get_counts() == {"01": 4}


def test_legacy_hex_counts_are_accepted() -> None:
    job = completed({"circuit_results": [{"hex_counts": {"0x3": 2}}]})
    header = {"creg_sizes": [["c", 2]], "memory_slots": 2}
    assert to_qiskit_result(job, backend_name="b", headers=[header]).get_counts() == {"11": 2}


def test_memory_is_rebuilt_from_counts_when_requested() -> None:
    job = completed({"circuit_results": [{"counts": {"00": 3, "11": 2}, "shots": 5}]})
    result = to_qiskit_result(job, backend_name="b", memory=True, seed=1)
    memory = result.get_memory()
    assert sorted(memory) == ["00", "00", "00", "11", "11"]


def test_reported_memory_is_used() -> None:
    job = completed({"circuit_results": [{"counts": {"01": 1}, "memory": ["01"], "shots": 1}]})
    assert to_qiskit_result(job, backend_name="b", memory=True).get_memory() == ["01"]


def test_job_without_result_is_rejected() -> None:
    job = Job._from_proto(job_pb2.Job(id="j", state=job_pb2.Job.STATE_FAILED))
    with pytest.raises(ValueError, match="no result"):
        to_qiskit_result(job, backend_name="b")


def test_driver_header_is_used_for_qasm_submissions() -> None:
    # Circuits sent as QASM text have no local header: the driver's one splits registers.
    header = {
        "memory_slots": 3,
        "creg_sizes": [["a", 1], ["b", 2]],
        "clbit_labels": [["a", 0], ["b", 0], ["b", 1]],
    }
    job = completed({"circuit_results": [{"counts": {"101": 2}, "shots": 2, "header": header}]})
    assert to_qiskit_result(job, backend_name="b").get_counts() == {"10 1": 2}
