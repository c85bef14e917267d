"""Every benchmark script still runs: each once, at toy sizes, against its real processes.

`make bench` takes an hour and runs by hand, so a script broken by a change elsewhere (an
API it calls, a server limit it now hits) would otherwise show only at the next refresh.
The figures of such small runs mean nothing; the test asserts that the script finishes
and prints its table. The PostgreSQL pass runs the scripts that take a database choice
against PostgreSQL, and the replica scripts, which need it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("QPI_TEST_DATABASE") == "postgres"

# script -> the smallest arguments that still run every row of its table.
TOY_SIZES: dict[str, list[str]] = {
    "throughput.py": [
        *("--jobs", "40", "--clients", "4", "--drivers", "1", "--samples", "10"),
        *("--real-jobs", "20", "--real-prefetch", "1", "--paced-rate", "50"),
    ],
    "scheduler_scale.py": ["--sizes", "1000", "--samples", "5"],
    "sqlite_stalls.py": ["--seconds", "1", "--rounds", "1"],
    "dispatch_latency.py": ["--jobs", "20"],
    "driver_overhead.py": ["--jobs", "10"],
    "aer_transpile.py": ["--runs", "3"],
    "cold_start.py": ["--warm", "1", "--executors", "mock"],
    "rest_listing.py": ["--jobs", "2000", "--others", "200", "--repeat", "3"],
    "batch_submit.py": ["--batches", "2", "--batch-size", "50", "--single", "20"],
    "nng_vs_grpc.py": ["--jobs", "5", "--burst", "10", "--shots", "10"],
    "qasm_submit_latency.py": ["--rounds", "2", "--concurrency", "2"],
    "soak.py": ["--minutes", "0.1", "--every", "1"],
    "replicas.py": ["--jobs", "10"],
    "replica_throughput.py": ["--jobs", "40", "--rounds", "1"],
    "driver_reattach.py": ["--rounds", "2"],
}
TAKES_DATABASE = {
    "throughput.py",
    "scheduler_scale.py",
    "dispatch_latency.py",
    "rest_listing.py",
    "batch_submit.py",
    "soak.py",
}
NEEDS_POSTGRES = {"replicas.py", "replica_throughput.py"}
PLAIN_TEXT = {"driver_reattach.py"}  # a one-line summary, not part of `make bench`


def _this_pass() -> list[str]:
    if POSTGRES:
        return sorted(TAKES_DATABASE | NEEDS_POSTGRES)
    return sorted(set(TOY_SIZES) - NEEDS_POSTGRES)


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{script} exited with {done.returncode}:\n{output[-4000:]}"
    return done.stdout


def _run_all() -> ModuleType:
    """bench/run_all.py (bench/ is a directory of scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_of_make_bench_has_a_toy_run() -> None:
    scripts = {script for script, _ in _run_all().BENCHMARKS}
    assert scripts <= set(TOY_SIZES), scripts - set(TOY_SIZES)


@pytest.mark.timeout(420)
@pytest.mark.parametrize("script", _this_pass())
def test_the_script_runs_and_prints_its_figures(script: str) -> None:
    if script in PLAIN_TEXT:
        assert "median" in _run(script, *TOY_SIZES[script])
        return
    database = ["--database", "postgres"] if POSTGRES and script in TAKES_DATABASE else []
    out = _run(script, *TOY_SIZES[script], *database, "--markdown")
    assert "### " in out, out[-2000:]
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    separators = [line for line in out.splitlines() if line.startswith("|---")]
    assert separators, out[-2000:]
    assert len(rows) > len(separators), out[-2000:]  # a header and at least one row each
