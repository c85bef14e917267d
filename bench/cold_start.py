"""Cold start: the first job after `qpi-driver start` against the warm jobs that follow.

Starts a real `qpi serve` and a real `qpi-driver start --executor <name>` (subprocesses),
submits one Bell job as soon as the QPU is online, then `--warm` more one after another.
Reported per executor: the driver's start time (process launch to QPU online), and for the
first job and the warm median its run time on the server (lease to result, i.e. what the
QPU was busy with) and its billed seconds (what the user paid). The ratios first / warm
median are the acceptance figure of issue 11 item 2 (target: within 3x).

Run: .venv/bin/python bench/cold_start.py [--executors mock qiskit_aer] [--warm 10] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import load_average, markdown_table  # noqa: E402
from qpi.sdk.models import Job  # noqa: E402
from tests.support.processes import DriverProcess, ServeProcess  # noqa: E402

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


@dataclass(frozen=True)
class Sample:
    """One job: seconds the server saw it running, and seconds billed."""

    run: float
    billed: float


@dataclass(frozen=True)
class Outcome:
    """The figures of one executor."""

    executor: str
    start_seconds: float
    first: Sample
    warm: list[Sample]

    def warm_run(self) -> float:
        return statistics.median(s.run for s in self.warm)

    def warm_billed(self) -> float:
        return statistics.median(s.billed for s in self.warm)


def _sample(job: Job) -> Sample:
    if job.state != "completed":
        raise RuntimeError(f"job {job.id} ended {job.state}: {job.error}")
    if job.started is None or job.finished is None:
        raise RuntimeError(f"job {job.id} has no start or end time")
    return Sample((job.finished - job.started).total_seconds(), job.charged_seconds)


def measure(executor: str, warm: int, shots: int) -> Outcome:
    """Starts a fresh server and driver, then times the first and the warm jobs."""
    with tempfile.TemporaryDirectory(prefix="qpi-cold-") as tmp:
        root = Path(tmp)
        serve = ServeProcess(root, timers={"--job-timeout": "60s"}).start()
        driver: DriverProcess | None = None
        try:
            name = f"cold_{executor}"
            token = serve.create_qpu(name, num_qubits=8)
            user = serve.create_user("cold@example.com", qpu_seconds=1e6)
            launched = time.perf_counter()
            driver = DriverProcess(serve, token, root, name=name, executor=executor).start()
            driver.wait_connected(timeout=180)
            start_seconds = time.perf_counter() - launched
            samples = []
            for _ in range(warm + 1):
                job = serve.submit(user, BELL, qpu=name, shots=shots)
                samples.append(_sample(serve.wait(user, job.id, timeout=180)))
            return Outcome(executor, start_seconds, samples[0], samples[1:])
        finally:
            if driver is not None:
                driver.terminate(grace=5)
            serve.stop()


def _ratio(first: float, warm: float) -> str:
    return f"{first / warm:.1f}×" if warm > 0 else "—"


def report(outcomes: list[Outcome], markdown: bool) -> str:
    headers = [
        "executor",
        "driver start → online",
        "first job run",
        "warm run (median)",
        "run ratio",
        "first job billed",
        "warm billed (median)",
        "billed ratio",
    ]
    rows = [
        [
            o.executor,
            f"{o.start_seconds:.2f} s",
            f"{o.first.run * 1e3:.1f} ms",
            f"{o.warm_run() * 1e3:.1f} ms",
            _ratio(o.first.run, o.warm_run()),
            f"{o.first.billed * 1e3:.1f} ms",
            f"{o.warm_billed() * 1e3:.1f} ms",
            _ratio(o.first.billed, o.warm_billed()),
        ]
        for o in outcomes
    ]
    table = str(markdown_table(headers, rows))
    if not markdown:
        return table
    return (
        "### Cold start: first job after `qpi-driver start`\n\n"
        "Real `qpi serve` + `qpi-driver` processes; one Bell job as soon as the QPU is online,\n"
        f"then {len(outcomes[0].warm)} warm ones. *Run* = lease to result on the server, "
        "*billed* = seconds charged. Target: first job within 3× the warm median.\n"
        f"Load average: {load_average()}.\n\n{table}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executors", nargs="*", default=["mock", "qiskit_aer"])
    parser.add_argument("--warm", type=int, default=10, help="warm jobs after the first")
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--markdown", action="store_true")
    ns = parser.parse_args()
    outcomes = [measure(executor, ns.warm, ns.shots) for executor in ns.executors]
    print(report(outcomes, ns.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
