"""Other users' latency while the server parses a worst-case *allowed* submission.

A real `qpi serve` process (SQLite, default limits) is probed by another user with rounds
of concurrent `GET /api/qpus` and with small job submissions, first idle, then while one
of these is being validated:

* 1,000 OpenQASM 3 circuits of ~535 bytes (534 KB), the submission of issue 11.5, which
  takes tens of seconds to parse;
* one OpenQASM 2 circuit of 1,000 qubits x 500 broadcast layers = 500,000 operations, the
  most the default `--max-operations` allows (a few kilobytes of text).

Prints p50/p99 per phase and the floor (a bare gRPC health Check over TLS).

    .venv/bin/python bench/qasm_submit_latency.py [--rounds 20] [--concurrency 10] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    Stats,
    grpc_floor,
    load_average,
    markdown_table,
    stats_row,
    summarize,
)
from tests.support.big_submission import (  # noqa: E402
    Probe,
    Submission,
    broadcast_circuit,
    circuits,
)
from tests.support.processes import ServeProcess, wait_until  # noqa: E402

SMALL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'


def _small_submit(http: httpx.Client, token: str) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        response = http.post(
            "/api/jobs",
            json={"circuits": [{"circuit": SMALL}], "shots": 10, "qpu_target": "parked"},
            headers={"X-API-Token": token},
        )
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    return once


def _phase(
    probe: Probe,
    submit_small: Callable[[], float],
    rounds: int,
    concurrency: int,
    submission: Submission | None,
) -> tuple[Stats, Stats]:
    """GET rounds and small submits, while `submission` (if any) is in flight."""
    gets: list[float] = []
    submits: list[float] = []
    for _ in range(rounds):
        if submission is not None and submission.done.is_set():
            break
        samples = probe.round(concurrency)
        gets += [s.ms for s in samples if submission is None or submission.covers(s)]
        submits.append(submit_small())
    if submission is not None:
        # Keep probing until the big one is done, so its whole duration is covered.
        while not submission.done.is_set():
            gets += [s.ms for s in probe.round(concurrency) if submission.covers(s)]
            submits.append(submit_small())
    return summarize(gets or [float("nan")]), summarize(submits or [float("nan")])


def _big(http: httpx.Client, token: str, sources: list[str]) -> Submission:
    submission = Submission()
    submission.run(
        lambda: http.post(
            "/api/jobs",
            json={"circuits": [{"circuit": s} for s in sources], "qpu_target": "parked"},
            headers={"X-API-Token": token},
        )
    )
    wait_until(lambda: submission.started, 30, "the submission to start")
    time.sleep(0.5)
    return submission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # The small submits wait on a QPU without a driver, one per probe round for as
        # long as the big parse lasts: a queue limit far off, or a fast machine's probes would
        # reach the default (and measure 429s instead of submits).
        server = ServeProcess(Path(tmp), extra_args=("--max-pending-per-user", "1000000")).start()
        try:
            big_user = server.create_user("big@example.com", qpu_seconds=1e9)
            other = server.create_user("other@example.com", qpu_seconds=1e9)
            server.create_qpu("parked", num_qubits=1000)  # no driver: jobs wait
            channel = grpc.secure_channel(
                server.grpc_target, grpc.ssl_channel_credentials(server.ca_pem)
            )
            floor = grpc_floor(channel)
            with httpx.Client(base_url=server.http_url, timeout=600) as http:
                probe = Probe(http, "/api/qpus", {"X-API-Token": other})
                small = _small_submit(http, other)
                small()  # the parser workers are warm
                idle = _phase(probe, small, args.rounds, args.concurrency, None)
                results = []
                for label, sources in (
                    ("1,000 QASM 3 circuits (534 KB)", circuits(1000)),
                    ("500,000 broadcast operations (QASM 2)", [broadcast_circuit(1000, 500)]),
                ):
                    submission = _big(http, big_user, sources)
                    during = _phase(probe, small, args.rounds, args.concurrency, submission)
                    response = submission.response
                    outcome = "no response" if response is None else str(response.status_code)
                    results.append((label, during, submission.ended - submission.started, outcome))
        finally:
            server.stop()
    rows = [
        stats_row(f"GET /api/qpus ×{args.concurrency}, idle", idle[0], floor),
        stats_row("small submit, idle", idle[1], floor),
    ]
    notes = []
    for label, (gets, submits), seconds, outcome in results:
        rows.append(stats_row(f"GET /api/qpus ×{args.concurrency}, during {label}", gets, floor))
        rows.append(stats_row(f"small submit, during {label}", submits, floor))
        notes.append(f"{label}: answered HTTP {outcome} after {seconds:.1f} s")
    rows.append(stats_row("floor (gRPC health Check, TLS)", floor, floor))
    table = markdown_table(["request", "p50", "p99", "× floor"], rows)
    text = (
        "### Other users' latency during a worst-case allowed submission\n\n"
        f"{table}\n\n" + "\n".join(f"- {n}" for n in notes) + f"\n- load average {load_average()}\n"
    )
    print(text if args.markdown else text.replace("### ", ""))


if __name__ == "__main__":
    main()
