"""A minimal driver speaking the DriverService stream, for server tests.

It runs circuits on Qiskit's BasicSimulator in a thread. Runnable as a script so tests can
SIGKILL it as a real process:
    python tests/support/mini_driver.py --target 127.0.0.1:PORT --token qpi_... [--delay 0.5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc, job_pb2

_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def run_payload(payload: job_pb2.JobPayload) -> dict[str, Any]:
    """Executes a payload's circuits in a worker process; returns the result dict.

    Like a real driver, this keeps Qiskit's native code out of the process that hosts the
    server (in tests they share a process, and that combination has crashed).
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # Spawned workers inherit sys.path: make this module importable there.
            root = str(Path(__file__).resolve().parents[2])
            if root not in sys.path:
                sys.path.insert(0, root)
            _POOL = ProcessPoolExecutor(
                2,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        pool = _POOL
    return pool.submit(_run_serialized, payload.SerializeToString()).result()


PARENT_CHECK_SECONDS = 0.2


def _exit_with_parent(parent: int) -> None:
    """Pool worker initializer: exit as soon as the process that started the pool is gone.

    A pool worker waits for tasks on a queue whose write end it holds itself, so it never
    sees its parent die: a driver SIGKILLed by a test (or a killed pytest worker) would
    leave it, and the resource tracker whose pipe it holds, running forever under init.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="mini-parent-watch", daemon=True).start()


def _run_serialized(data: bytes) -> dict[str, Any]:
    return _run(job_pb2.JobPayload.FromString(data))


def _run(payload: job_pb2.JobPayload) -> dict[str, Any]:
    from qiskit import qasm2, qasm3, transpile
    from qiskit.providers.basic_provider import BasicSimulator

    backend = BasicSimulator()
    results = []
    for c in payload.circuits:
        circuit = qasm3.loads(c.qasm) if "OPENQASM 3" in c.qasm else qasm2.loads(c.qasm)
        shots = c.shots or payload.shots or 1024
        counts = backend.run(transpile(circuit, backend), shots=shots).result().get_counts()
        width = circuit.num_clbits
        full = {format(i, f"0{width}b"): 0 for i in range(2**width)}
        full.update({k.replace(" ", ""): v for k, v in counts.items()})
        results.append({"counts": full, "shots": shots})
    return {
        "shots": results[0]["shots"],
        "backend": "mini",
        "success": True,
        "circuit_results": results,
        "counts": results[0]["counts"],
    }


class MiniDriver:
    """Connects, executes assignments one at a time, reconnects on stream loss."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        delay: float = 0.0,
        name: str = "mini",
        capacity: int = 1,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target, self.token, self.delay, self.name, self.capacity = (
            target,
            token,
            delay,
            name,
            capacity,
        )
        self.credentials = credentials
        self.executed: list[tuple[str, int]] = []
        self.cancelled: list[str] = []
        # A cancellation ends one lease (job, attempt), not a later attempt of the job.
        self._cancelled_leases: set[tuple[str, int]] = set()
        self.welcomed = threading.Event()
        self.stopped = threading.Event()
        self.fatal: grpc.RpcError | None = None
        self._outbox: queue.Queue[pb.ConnectRequest | None] = queue.Queue()
        self._call: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        # Jobs accepted and not yet answered: heartbeats report them, as the protocol asks.
        self._held: dict[str, int] = {}
        self._held_lock = threading.Lock()

    def start(self) -> MiniDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._outbox.put(None)
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout=5)

    def _requests(self) -> Any:
        yield pb.ConnectRequest(
            hello=pb.DriverHello(
                name=self.name,
                version="test",
                executor="mini",
                capacity=self.capacity,
                executes_jobs=True,
                num_qubits=8,
            )
        )
        while True:
            item = self._outbox.get()
            if item is None:
                return
            yield item

    def _run(self) -> None:
        while not self.stopped.is_set():
            channel = (
                grpc.secure_channel(self.target, self.credentials)
                if self.credentials
                else grpc.insecure_channel(self.target)
            )
            stub = driver_service_pb2_grpc.DriverServiceStub(channel)
            self._outbox = queue.Queue()
            beat = threading.Thread(target=self._heartbeats, daemon=True)
            try:
                self._call = stub.Connect(
                    self._requests(), metadata=[("authorization", f"Bearer {self.token}")]
                )
                beat.start()
                for message in self._call:
                    self._on(message)
            except grpc.RpcError as exc:
                if exc.code() in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                ):
                    self.fatal = exc
                    return
            finally:
                self._outbox.put(None)
                channel.close()
            time.sleep(0.2)

    def _heartbeats(self) -> None:
        outbox = self._outbox
        while not self.stopped.is_set():
            time.sleep(0.5)
            with self._held_lock:
                held = [pb.HeldJob(job_id=j, attempt=a) for j, a in self._held.items()]
            outbox.put(pb.ConnectRequest(heartbeat=pb.DriverHeartbeat(running_jobs=held)))

    def _on(self, message: pb.ConnectResponse) -> None:
        kind = message.WhichOneof("message")
        if kind == "welcome":
            self.welcomed.set()
        elif kind == "job_assignment":
            a = message.job_assignment
            with self._held_lock:
                self._held[a.job_id] = a.attempt
            self._outbox.put(
                pb.ConnectRequest(job_accepted=pb.JobAccepted(job_id=a.job_id, attempt=a.attempt))
            )
            threading.Thread(target=self._execute, args=(a,), daemon=True).start()
        elif kind == "job_cancellation":
            c = message.job_cancellation
            self.cancelled.append(c.job_id)
            self._cancelled_leases.add((c.job_id, c.attempt))
            with self._held_lock:
                if self._held.get(c.job_id) == c.attempt:
                    del self._held[c.job_id]

    def _execute(self, a: pb.JobAssignment) -> None:
        started = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        if (a.job_id, a.attempt) in self._cancelled_leases:
            return
        try:
            result = pb.JobResult(
                job_id=a.job_id, attempt=a.attempt, result_json=json.dumps(run_payload(a.payload))
            )
        except Exception as exc:  # report the failure like a real driver would
            result = pb.JobResult(
                job_id=a.job_id, attempt=a.attempt, error=f"{type(exc).__name__}: {exc}"
            )
        result.execution_seconds = time.perf_counter() - started
        self.executed.append((a.job_id, a.attempt))
        with self._held_lock:
            # Queued before the next heartbeat, so the server sees the result first.
            self._outbox.put(pb.ConnectRequest(job_result=result))
            if self._held.get(a.job_id) == a.attempt:
                del self._held[a.job_id]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--name", default="mini")
    args = parser.parse_args()
    driver = MiniDriver(args.target, args.token, delay=args.delay, name=args.name).start()
    driver.welcomed.wait(30)
    print("READY", flush=True)
    while not driver.stopped.is_set():
        time.sleep(1)


if __name__ == "__main__":
    main()
