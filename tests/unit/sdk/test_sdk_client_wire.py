"""Client behaviour on the wire, against the in-process fake (see conftest.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BackendSamplerV2
from qiskit.providers import JobStatus

from qpi.sdk import (
    AuthenticationError,
    InvalidQasmError,
    JobCancelledError,
    JobNotFoundError,
    QPIClient,
    QpuNotFoundError,
)
from qpi.sdk.qiskit import QPIProvider

FakeServer = Any  # the fixture's type lives in conftest.py, which is not importable


class MethodCounter(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Counts the RPCs a client makes, by method name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, details: Any) -> None:
        with self._lock:
            self.calls[details.method.rsplit("/", 1)[-1]] += 1

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self._count(details)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self._count(details)
        return continuation(details, request)


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def client_for(server: FakeServer, **kwargs: Any) -> QPIClient:
    return QPIClient(f"grpc://{server.target}", api_token=server.token, **kwargs)


def test_submit_then_wait_streams_to_completion(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        job = client.submit_job([bell()], shots=200, qpu_target="qpu-1")
        assert job.state == "pending"
        done = client.wait(job.id, timeout=10)
    assert done.state == "completed"
    assert done.counts is not None
    assert sum(done.counts.values()) == 200
    assert set(done.counts) == {"00", "01", "10", "11"}
    assert fake_server.state.calls["GetJob"] == 0


def test_wait_returns_promptly_after_the_result_is_stored(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        job = client.submit_job([bell()], shots=10)
        client.wait(job.id, timeout=10)
        returned = time.monotonic()
    assert returned - fake_server.state.finished_at[job.id] < 0.05


def test_watch_yields_each_state_once(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        job = client.submit_job([bell()], shots=10)
        states = [update.state for update in client.watch(job.id)]
    assert states == ["pending", "running", "completed"]


def test_wait_timeout_raises_timeout_error_and_cancels(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        job = client.submit_job([bell()], shots=13)  # never runs on the fake
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.wait(job.id, timeout=0.3)
        assert time.monotonic() - started < 2


def test_hundred_concurrent_waits_use_streams_only(fake_server: FakeServer) -> None:
    counter = MethodCounter()
    with client_for(fake_server, interceptors=[counter]) as client:
        fake_server.state.delay = 0.5
        job = client.submit_job([bell()], shots=10)
        results: list[str] = []
        lock = threading.Lock()

        def waiter() -> None:
            state = client.wait(job.id, timeout=20).state
            with lock:
                results.append(state)

        threads = [threading.Thread(target=waiter) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == ["completed"] * 100
    assert counter.calls == Counter({"CreateJob": 1, "WatchJob": 100})
    assert fake_server.state.calls["GetJob"] == 0


def test_errors_are_typed(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        with pytest.raises(InvalidQasmError) as bad_qasm:
            client.submit_job(["OPENQASM 3.0; this is not qasm"])
        assert bad_qasm.value.reason == "INVALID_QASM"
        with pytest.raises(QpuNotFoundError):
            client.submit_job([bell()], qpu_target="nope")
        with pytest.raises(JobNotFoundError):
            client.get_job("missing")
        with pytest.raises(JobNotFoundError):
            client.wait("missing", timeout=5)
    with (
        QPIClient(fake_server.target) as anonymous,
        pytest.raises(AuthenticationError) as no_auth,
    ):
        anonymous.get_job("x")
    assert no_auth.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_list_jobs_hides_pages_and_honours_limit(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        ids = {client.submit_job([bell()], shots=13).id for _ in range(5)}
        assert {job.id for job in client.list_jobs()} == ids
        assert len(list(client.list_jobs(limit=3))) == 3


def test_wait_raise_on_failure_and_cancel(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        job = client.submit_job([bell()], shots=13)
        assert client.cancel_job(job.id).state == "cancelled"
        assert client.wait(job.id).state == "cancelled"
        qjob = client.job(job.id)
        assert qjob.status() is JobStatus.CANCELLED
        with pytest.raises(JobCancelledError):
            qjob.result()


def test_backend_run_bell_gives_padded_balanced_counts(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        backend = client.get_backend("qpu-1")
        assert backend.num_qubits == 2
        job = backend.run(bell(), shots=2000)
        counts = job.result(timeout=10).get_counts()
        assert job.status() is JobStatus.DONE
    assert set(counts) == {"00", "01", "10", "11"}
    assert counts["01"] == counts["10"] == 0
    assert 800 < counts["00"] < 1200
    assert counts["00"] + counts["11"] == 2000
    submitted = fake_server.state.jobs[job.job_id()]
    assert submitted.qpu_id == "q1"


def test_backend_binds_parameters_and_sends_sets(fake_server: FakeServer) -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1, 1)
    circuit.rx(theta, 0)
    circuit.measure(0, 0)
    with client_for(fake_server) as client:
        backend = QPIProvider(client).get_backend("q1")
        bound = backend.run(circuit, shots=50, parameter_values={"theta": 3.141592653589793})
        assert bound.result(timeout=10).get_counts() == {"0": 0, "1": 50}
        sets = backend.run([circuit], shots=50, parameter_values=[[[0.0], [3.141592653589793]]])
        assert sets.result(timeout=10).get_counts() == [{"0": 50, "1": 0}, {"0": 0, "1": 50}]


def test_backend_sampler_v2_samples_bell(fake_server: FakeServer) -> None:
    with client_for(fake_server) as client:
        sampler = BackendSamplerV2(backend=client.get_backend("qpu-1"))
        result = sampler.run([bell()], shots=1000).result()
    counts = result[0].data.c.get_counts()
    assert set(counts) == {"00", "11"}
    assert 400 < counts["00"] < 600
    assert sum(counts.values()) == 1000
