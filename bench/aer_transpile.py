"""Why the Aer executor reuses one pass manager: per-job `transpile()` versus the
executor's cached pass manager, on the same Bell circuit (medians over repeated runs).

Run: .venv/bin/python bench/aer_transpile.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

from qiskit import QuantumCircuit, transpile

from qpi.driver.executors.qiskit_aer import QiskitAerExecutor


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def median_ms(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    executor = QiskitAerExecutor()
    circuit = bell()
    executor.pass_manager.run(circuit)  # warm both paths once
    transpile(circuit, executor.backend)
    fresh = median_ms(lambda: transpile(circuit, executor.backend), args.runs)
    cached = median_ms(lambda: executor.pass_manager.run(circuit), args.runs)
    print(f"transpile() per job: median {fresh:.2f} ms")
    print(f"reused pass manager: median {cached:.3f} ms  ({fresh / cached:.0f}x faster)")


if __name__ == "__main__":
    main()
