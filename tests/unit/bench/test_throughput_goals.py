"""The throughput benchmark's verdicts: a goal is reported met only when its figures show it.

`make bench` writes these verdicts into docs/benchmarks.md, and the closing notes quote
them, so a verdict that says "met" for a load the server did not carry would misreport
the issue's goal.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def throughput() -> ModuleType:
    path = ROOT / "bench" / "throughput.py"
    spec = importlib.util.spec_from_file_location("bench_throughput", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _stats(module: ModuleType, p50: float, p99: float | None = None) -> object:
    return module.Stats(n=100, p50=p50, p99=p99 if p99 is not None else p50 * 2, mean=p50)


def _goals(module: ModuleType, *, completed: float, offered: float, p99: float) -> str:
    floor = _stats(module, 1.0)
    idle = [("submit", _stats(module, 2.5)), ("round trip", _stats(module, 8.0))]
    loads = [
        ("1 zero-work driver(s) × capacity 4", 400.0, _stats(module, 10.0), 2.0),
        (
            f"1 zero-work driver(s) × capacity 4, submits paced at {offered:.0f}/s (open loop)",
            completed,
            _stats(module, 3.0, p99),
            2.0,
        ),
    ]
    text: str = module.goals("sqlite", floor, idle, loads, offered)
    return text.split("submit p99 under that load", 1)[1].split(";", 1)[0]


def test_a_carried_load_with_a_short_tail_meets_the_goal(throughput: ModuleType) -> None:
    verdict = _goals(throughput, completed=298.0, offered=300.0, p99=15.0)
    assert "298 completed jobs/s" in verdict
    assert verdict.endswith("met")
    assert "not met" not in verdict


def test_a_long_tail_does_not_meet_it(throughput: ModuleType) -> None:
    assert "not met" in _goals(throughput, completed=300.0, offered=300.0, p99=25.0)


def test_jobs_completing_slower_than_offered_do_not_meet_it(throughput: ModuleType) -> None:
    verdict = _goals(throughput, completed=210.0, offered=300.0, p99=15.0)
    assert "not met (the jobs completed slower than they were offered)" in verdict


def test_a_rate_below_the_goal_does_not_meet_it(throughput: ModuleType) -> None:
    verdict = _goals(throughput, completed=100.0, offered=100.0, p99=5.0)
    assert "not met (offered below the goal's 300/s)" in verdict
