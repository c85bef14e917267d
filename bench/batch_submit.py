"""Accepted jobs per second: BatchCreateJobs (SDK ``submit_jobs``) against single CreateJob.

Jobs go to a QPU without a driver, so they stay pending and the figure is the submit path
alone (validation, routing, one INSERT transaction). Batches of identical circuits (a
sweep of one circuit text) parse it once; "distinct" batches vary a rotation angle so each
circuit is parsed.

    .venv/bin/python bench/batch_submit.py [--batches 10] [--batch-size 1000] [--single 400]
        [--database sqlite|postgres] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    summarize,
)
from qpi.sdk import QPIClient  # noqa: E402
from tests.support.harness import ServerHarness, drop_postgres, make_settings  # noqa: E402

BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)


def _rotated(i: int) -> str:
    return BELL.replace("h q[0];", f"rx({0.001 * i:.4f}) q[0];")


def _single(client: QPIClient, n: int, threads: int) -> tuple[float, list[float]]:
    """Jobs/s and per-call ms of `n` CreateJob calls from `threads` threads."""

    def one(i: int) -> float:
        t0 = time.perf_counter()
        client.submit_job([BELL], shots=10, qpu_target="parked")
        return (time.perf_counter() - t0) * 1e3

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started), times


def _batches(
    client: QPIClient, batches: int, size: int, distinct: bool
) -> tuple[float, list[float]]:
    """Jobs/s and per-batch ms of `batches` sequential BatchCreateJobs calls."""
    times = []
    started = time.perf_counter()
    for b in range(batches):
        circuits = [_rotated(b * size + i) if distinct else BELL for i in range(size)]
        t0 = time.perf_counter()
        jobs = client.submit_jobs(circuits, shots=10, qpu_target="parked")
        times.append((time.perf_counter() - t0) * 1e3)
        assert len(jobs) == size
    return batches * size / (time.perf_counter() - started), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--single", type=int, default=400)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = args.database
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "srv", max_pending_per_user=0)
        server = ServerHarness(settings).start()
        try:
            server.register_qpu("parked", 2)
            _, token = server.create_user("bench@example.com", qpu_seconds=1e9)
            floor = grpc_floor(server.channel())
            rows = []
            with QPIClient(server.grpc_target, api_token=token) as client:
                client.submit_jobs([BELL] * 10, qpu_target="parked")  # warm the parser
                for threads in (1, 8):
                    rate, times = _single(client, args.single, threads)
                    stats = summarize(times)
                    rows.append(
                        [
                            f"single CreateJob, {threads} thread(s)",
                            f"{rate:,.0f}",
                            f"{stats.p50:.1f} ms / call",
                            f"{stats.p99:.1f} ms",
                        ]
                    )
                for distinct in (False, True):
                    rate, times = _batches(client, args.batches, args.batch_size, distinct)
                    stats = summarize(times)
                    kind = "distinct circuits" if distinct else "one circuit text (sweep)"
                    rows.append(
                        [
                            f"BatchCreateJobs ×{args.batch_size}, {kind}",
                            f"{rate:,.0f}",
                            f"{stats.p50:.0f} ms / batch",
                            f"{stats.p99:.0f} ms",
                        ]
                    )
            title = f"### Batch submission: accepted jobs/s ({args.database})"
            table = markdown_table(["how", "jobs/s", "p50", "p99"], rows)
            notes = (
                f"Floor (gRPC health Check, TLS): p50 {floor.p50:.2f} ms; "
                f"load average {load_average()}; {args.batches} batches per batch row, "
                f"{args.single} calls per single row; 2-qubit Bell circuits, 10 shots."
            )
            print_section(title, table, notes, args.markdown)
        finally:
            server.stop()
            if args.database == "postgres":
                drop_postgres(settings.database_url)


if __name__ == "__main__":
    main()
