"""The "big submission" workload of issue 11.5, shared by its e2e test and its benchmark.

A lab's real submission: 1,000 OpenQASM 3 circuits of ~535 bytes each (535 KB), whose
parsing takes tens of seconds. While it is processed, other users' requests must still
be answered promptly.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx


def circuit(index: int) -> str:
    """One ~535-byte OpenQASM 3 circuit (angles vary, so no two are the same)."""
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', "qubit[5] q;", "bit[5] c;"]
    for layer in range(9):
        angle = (index * 7 + layer) % 997 / 1000
        lines += [
            f"h q[{layer % 5}];",
            f"cx q[{layer % 5}], q[{(layer + 1) % 5}];",
            f"rz({angle:.3f}) q[{(layer + 2) % 5}];",
            f"sx q[{(layer + 3) % 5}];",
        ]
    lines += ["s q[1];", "t q[2];", "barrier q;", "c = measure q;"]
    return "\n".join(lines) + "\n"


def circuits(count: int = 1000) -> list[str]:
    """`count` distinct circuits (1,000 by default: ~535 KB)."""
    return [circuit(i) for i in range(count)]


def broadcast_circuit(width: int = 1000, layers: int = 500) -> str:
    """A small text expanding to width x layers operations (QASM 2 register broadcasts)."""
    header = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{width}];\n'
    return header + "h q;\n" * layers


@dataclass
class Sample:
    """One probe request: when it started and ended (perf_counter) and its status."""

    started: float
    ended: float
    status: int

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class Probe:
    """Fires rounds of concurrent GETs and keeps every sample."""

    http: httpx.Client
    path: str
    headers: dict[str, str]
    samples: list[Sample] = field(default_factory=list)

    def one(self) -> Sample:
        started = time.perf_counter()
        # A bounded wait: a frozen server fails the probe instead of hanging the caller.
        status = self.http.get(self.path, headers=self.headers, timeout=60).status_code
        sample = Sample(started, time.perf_counter(), status)
        self.samples.append(sample)
        return sample

    def round(self, concurrency: int) -> list[Sample]:
        """`concurrency` GETs at once; returns when all have answered."""
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(lambda _: self.one(), range(concurrency)))


@dataclass
class Submission:
    """A POST /api/jobs running in a background thread, with its start and end times."""

    started: float = 0.0
    ended: float = 0.0
    response: httpx.Response | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, send: Callable[[], httpx.Response]) -> None:
        def worker() -> None:
            self.started = time.perf_counter()
            try:
                self.response = send()
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                self.error = exc
            finally:
                self.ended = time.perf_counter()
                self.done.set()

        threading.Thread(target=worker, daemon=True).start()

    def covers(self, sample: Sample) -> bool:
        """Whether `sample` ran entirely while the submission was in flight."""
        return self.started <= sample.started and (
            not self.done.is_set() or sample.ended <= self.ended
        )


def median_ms(samples: list[Sample]) -> float:
    return statistics.median(s.ms for s in samples)
