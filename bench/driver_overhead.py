"""Per-job driver overhead and throughput of `qpi-driver` against the fake DriverService.

Overhead = (result received by the server - assignment sent) - executor wall time, i.e.
everything the daemon adds: proto handling, the pipe to the worker, JSON, and gRPC.

Run: .venv/bin/python bench/driver_overhead.py [--jobs 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "driver"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, markdown_table  # noqa: E402
from fake_driver_server import TOKEN, FakeDriverServer, bell_payload  # noqa: E402

from qpi.driver.bootstrap import Endpoint  # noqa: E402
from qpi.driver.daemon import DriverDaemon  # noqa: E402
from qpi.driver.settings import DriverSettings  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(executor: str, jobs: int, save_raw: bool) -> list[str]:
    server = FakeDriverServer(heartbeat_interval=5.0)
    await server.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = DriverSettings(
            token=TOKEN, executor=executor, data_dir=Path(tmp), save_raw_data=save_raw
        )
        daemon = DriverDaemon(
            settings, discover_fn=lambda *_: Endpoint(f"127.0.0.1:{server.port}", None)
        )
        task = asyncio.create_task(daemon.run(handle_signals=False))
        await server.wait_for(lambda: server.connected, 120)
        payload = bell_payload(shots=100)
        for i in range(20):  # warm-up
            server.assign(f"w{i}", payload)
            await server.wait_for(lambda i=i: f"w{i}" in server.results)
        overheads: list[float] = []
        latencies: list[float] = []
        for i in range(jobs):  # sequential: one job in flight, like capacity=1
            job = f"j{i}"
            server.assign(job, payload)
            await server.wait_for(lambda job=job: job in server.results)
            done = next(r.at for r in reversed(server.received) if r.kind == "job_result")
            total = done - server.sent_at[job]
            latencies.append(total)
            overheads.append(total - server.results[job].execution_seconds)
        started = time.perf_counter()
        for i in range(jobs):
            server.assign(f"t{i}", payload)
            await server.wait_for(lambda i=i: f"t{i}" in server.results)
        throughput = jobs / (time.perf_counter() - started)
        daemon.request_stop()
        await task
    await server.stop(0)
    ms = 1000.0
    return [
        executor,
        "on" if save_raw else "off",
        f"{statistics.median(overheads) * ms:.3f} ms",
        f"{pct(overheads, 0.99) * ms:.3f} ms",
        f"{statistics.median(latencies) * ms:.3f} ms",
        f"{pct(latencies, 0.99) * ms:.3f} ms",
        f"{throughput:.0f} jobs/s",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [
        await bench(executor, args.jobs, save_raw)
        for executor in ("mock", "qiskit_aer")
        for save_raw in (False, True)
    ]
    headers = ["executor", "raw data", "overhead p50", "overhead p99", "latency p50"]
    headers += ["latency p99", "throughput"]
    if args.markdown:
        print("### Driver overhead (capacity 1)\n")
        print(
            f"`bench/driver_overhead.py`: the real driver daemon against an in-process fake "
            f"server, {args.jobs} sequential Bell jobs; overhead is latency minus execution "
            f"time (driver-side only, so no server floor). Load average {load_average()}.\n"
        )
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    asyncio.run(main())
