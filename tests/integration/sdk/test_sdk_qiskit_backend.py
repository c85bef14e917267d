"""The Qiskit layer against a real server: BackendV2.run, JobV1.result, BackendSamplerV2."""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit
from qiskit.primitives import BackendSamplerV2
from qiskit.providers import JobStatus

from qpi.sdk.qiskit import QPIProvider


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def test_backend_run_bell_is_balanced_with_padded_keys(user: Any, qpu_id: str) -> None:
    backend = user.client.get_backend(qpu_id)
    assert backend.num_qubits == 2
    assert backend.max_circuits is None
    job = backend.run(bell(), shots=2000)
    counts = job.result(timeout=60).get_counts()
    assert job.status() is JobStatus.DONE
    assert all(len(key) == 2 for key in counts)
    assert counts.get("01", 0) == counts.get("10", 0) == 0
    assert 850 < counts["00"] < 1150
    assert counts["00"] + counts["11"] == 2000
    assert user.client.get_job(job.job_id()).qpu_id == qpu_id


def test_backend_runs_several_circuits_in_one_job(user: Any, qpu_id: str) -> None:
    one = QuantumCircuit(2, 3)  # a third, never-written clbit must still pad the keys
    one.x(0)
    one.measure([0, 1], [0, 1])
    backend = QPIProvider(user.client).get_backend(qpu_id)
    result = backend.run([bell(), one], shots=100).result(timeout=60)
    first, second = result.get_counts()
    assert set(first) <= {"00", "01", "10", "11"}
    assert second["001"] == 100


def test_backend_sampler_v2(user: Any, qpu_id: str) -> None:
    sampler = BackendSamplerV2(backend=user.client.get_backend(qpu_id))
    result = sampler.run([bell()], shots=1000).result()
    counts = result[0].data.c.get_counts()
    assert set(counts) <= {"00", "11"}
    assert 400 < counts["00"] < 600
    assert sum(counts.values()) == 1000


def test_provider_lists_backends(user: Any, qpu_id: str) -> None:
    backends = QPIProvider(user.client).backends()
    assert qpu_id in {b.qpu.id for b in backends}
