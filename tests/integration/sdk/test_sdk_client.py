"""QPIClient against a real in-process server: jobs, streams and error mapping."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import Any

import grpc
import pytest

from qpi.sdk import (
    AuthenticationError,
    InvalidQasmError,
    JobNotFoundError,
    QPIClient,
    QpuNotFoundError,
)

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q[0] -> c[0];
measure q[1] -> c[1];
"""


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


def test_submit_wait_counts(user: Any, qpu_id: str) -> None:
    job = user.client.submit_job([BELL_QASM2], shots=500, qpu_target=qpu_id)
    # Queued, or already leased to the idle driver by the submit itself.
    assert job.state in ("pending", "running")
    done = user.client.wait(job.id, timeout=30)
    assert done.state == "completed"
    assert done.qpu_id == qpu_id
    assert done.counts is not None
    assert sum(done.counts.values()) == 500
    assert set(done.counts) == {"00", "01", "10", "11"}
    assert done.counts["01"] == done.counts["10"] == 0
    assert done.finished is not None


def test_wait_returns_the_stored_result_after_it_is_stored(user: Any, qpu_id: str) -> None:
    # Latency is measured by bench/dispatch_latency.py; here only what wait() returns.
    for _ in range(3):
        job = user.client.submit_job([BELL_QASM2], shots=10, qpu_target=qpu_id)
        done = user.client.wait(job.id, timeout=60)
        returned = dt.datetime.now(dt.UTC)
        assert done.state == "completed"
        assert done.finished is not None
        assert done.finished <= returned
        assert sum(done.counts.values()) == 10


def test_hundred_concurrent_waits_are_streams_not_polls(
    qpi_server: Any, user: Any, qpu_id: str
) -> None:
    counter = MethodCounter()
    with QPIClient(qpi_server.grpc_target, api_token=user.token, interceptors=[counter]) as c:
        job = c.submit_job([BELL_QASM2], shots=100, qpu_target=qpu_id)
        states: list[str] = []
        lock = threading.Lock()

        def waiter() -> None:
            state = c.wait(job.id, timeout=60).state
            with lock:
                states.append(state)

        threads = [threading.Thread(target=waiter) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    assert states == ["completed"] * 100
    assert counter.calls == Counter({"CreateJob": 1, "WatchJob": 100})


def test_watch_ends_with_terminal_state(user: Any, qpu_id: str) -> None:
    job = user.client.submit_job([BELL_QASM2], shots=10, qpu_target=qpu_id)
    states = [update.state for update in user.client.watch(job.id)]
    assert states[-1] == "completed"
    assert len(states) == len(set(states))


def test_wait_timeout_then_cancel(admin: QPIClient, user: Any) -> None:
    """A job on a QPU without a driver stays pending; wait times out; cancel ends it."""
    idle = admin.create_qpu(f"idle-{time.monotonic_ns()}", num_qubits=2)
    job = user.client.submit_job([BELL_QASM2], shots=10, qpu_target=idle.qpu.id)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        user.client.wait(job.id, timeout=0.5)
    assert time.monotonic() - started < 5
    assert user.client.cancel_job(job.id).state == "cancelled"
    assert user.client.wait(job.id, timeout=5).state == "cancelled"


def test_subscribe_delivers_job_events(user: Any, qpu_id: str) -> None:
    events = user.client.subscribe(["jobs"])
    seen: list[str] = []
    ready = threading.Event()

    def consume() -> None:
        ready.set()
        for event in events:
            if event.job is not None:
                seen.append(event.job.state)
                if event.job.done:
                    return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.3)  # let the subscription register before the job changes
    job = user.client.submit_job([BELL_QASM2], shots=10, qpu_target=qpu_id)
    user.client.wait(job.id, timeout=30)
    thread.join(10)
    events.close()
    assert "completed" in seen


def test_list_jobs_iterates_and_limits(user: Any, qpu_id: str) -> None:
    ids = [user.client.submit_job([BELL_QASM2], shots=5, qpu_target=qpu_id).id for _ in range(3)]
    listed = [job.id for job in user.client.list_jobs()]
    assert set(ids) <= set(listed)
    assert len(list(user.client.list_jobs(limit=2))) == 2
    assert user.client.get_job(ids[0]).id == ids[0]


def test_bad_qasm_is_invalid_qasm_error(user: Any, qpu_id: str) -> None:
    with pytest.raises(InvalidQasmError) as caught:
        user.client.submit_job(["OPENQASM 3.0; qubit[1] q; nonsense q;"], qpu_target=qpu_id)
    assert caught.value.reason == "INVALID_QASM"
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_qpu_is_qpu_not_found(user: Any) -> None:
    with pytest.raises(QpuNotFoundError) as caught:
        user.client.submit_job([BELL_QASM2], qpu_target="no-such-qpu")
    assert caught.value.reason == "QPU_NOT_FOUND"
    with pytest.raises(QpuNotFoundError):
        user.client.get_qpu("no-such-qpu")


def test_no_credentials_is_authentication_error(qpi_server: Any) -> None:
    with QPIClient(qpi_server.grpc_target) as anonymous, pytest.raises(AuthenticationError):
        anonymous.list_jobs(limit=1).__next__()
    with (
        QPIClient(qpi_server.grpc_target, api_token="qpi_" + "0" * 64) as wrong,
        pytest.raises(AuthenticationError),
    ):
        wrong.get_current_user()


def test_other_users_job_is_not_found(user: Any, other_user: Any, qpu_id: str) -> None:
    job = user.client.submit_job([BELL_QASM2], shots=5, qpu_target=qpu_id)
    with pytest.raises(JobNotFoundError) as caught:
        other_user.client.get_job(job.id)
    assert caught.value.reason == "JOB_NOT_FOUND"
    with pytest.raises(JobNotFoundError):
        other_user.client.cancel_job(job.id)
    with pytest.raises(JobNotFoundError):
        other_user.client.wait(job.id, timeout=5)
