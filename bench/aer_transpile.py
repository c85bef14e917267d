"""Why the Aer executor reuses one pass manager: per-job `transpile()` versus the
executor's cached pass manager, on the same Bell circuit (medians over repeated runs).

Run: .venv/bin/python bench/aer_transpile.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from qiskit import QuantumCircuit, transpile

from qpi.driver.executors.qiskit_aer import QiskitAerExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, markdown_table  # noqa: E402


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
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    executor = QiskitAerExecutor()
    circuit = bell()
    executor.pass_manager.run(circuit)  # warm both paths once
    transpile(circuit, executor.backend)
    fresh = median_ms(lambda: transpile(circuit, executor.backend), args.runs)
    cached = median_ms(lambda: executor.pass_manager.run(circuit), args.runs)
    if args.markdown:
        print("### Aer executor: transpiling a Bell circuit\n")
        print(
            f"`bench/aer_transpile.py`: {args.runs} runs in-process (CPU only, no server "
            f"floor). Load average {load_average()}.\n"
        )
        print(
            markdown_table(
                ["what", "p50", "× reused pass manager"],
                [
                    ["transpile() per job", f"{fresh:.2f} ms", f"{fresh / cached:.0f}×"],
                    ["reused pass manager", f"{cached:.3f} ms", "1×"],
                ],
            )
        )
        return
    print(f"transpile() per job: median {fresh:.2f} ms")
    print(f"reused pass manager: median {cached:.3f} ms  ({fresh / cached:.0f}x faster)")


if __name__ == "__main__":
    main()
