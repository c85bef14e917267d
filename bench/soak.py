"""Server memory, idle and under a sustained closed-loop workload (the soak).

A real `qpi serve` (TLS, SQLite or PostgreSQL) and a real `qpi-driver --executor mock`
daemon; `--clients` SDK users submit a Bell job and wait for its result, over and over, for
`--minutes`. The server process's resident set size is sampled every `--every` seconds. A leak
shows as RSS that keeps climbing after the warm-up; a healthy server levels off.

Reported: RSS idle (after start, before any job), at the end of the first minute, at the end,
the peak, the slope over the second half (MB per 10 minutes), jobs completed, and the
submit→result latency of the soak's jobs against the floor of the same run.

    .venv/bin/python bench/soak.py [--database sqlite|postgres] [--minutes 10]
        [--clients 8] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    summarize,
)

BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (from /proc, no extra dependency)."""
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_KB / 1024


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and its children (the QASM parser processes), in MB."""
    from tests.support.processes import descendants

    total = rss_mb(pid)
    for child in descendants(pid):
        try:
            total += rss_mb(child)
        except (FileNotFoundError, ProcessLookupError):  # a worker being replaced
            pass
    return total


def slope_mb_per_10min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over the second half of the samples, in MB / 10 min."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    xs = [t for t, _ in half]
    ys = [m for _, m in half]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mean_x) ** 2 for x in xs)
    if den == 0:
        return 0.0
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return num / den * 600.0


def main() -> None:
    from tests.support.harness import drop_postgres, fresh_postgres_url
    from tests.support.processes import DriverProcess, ServeProcess

    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--markdown", action="store_true")
    ns = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = ns.database

    root = Path(tempfile.mkdtemp(prefix="qpi-soak-"))
    database_url = fresh_postgres_url() if ns.database == "postgres" else ""
    server = ServeProcess(root, database_url=database_url)
    server.start()
    driver: DriverProcess | None = None
    try:
        assert server.proc is not None
        pid = server.proc.pid
        token = server.create_qpu("soak", num_qubits=4)
        users = [
            server.create_user(f"soak{i}@example.com", qpu_seconds=1e9) for i in range(ns.clients)
        ]
        time.sleep(2.0)  # let start-up allocations settle before the idle reading
        idle = rss_mb(pid)
        idle_tree = tree_rss_mb(pid)
        driver = DriverProcess(server, token, root, name="soak").start().wait_connected()

        stop = threading.Event()
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(api_token: str) -> None:
            sdk = server.user(api_token)
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    job = sdk.submit_job(BELL, shots=100, qpu_target="soak")
                    sdk.wait(job.id, timeout=120, raise_on_failure=True)
                except Exception as exc:  # noqa: BLE001 - counted and reported; the soak goes on
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1e3)

        threads = [threading.Thread(target=client, args=(u,), daemon=True) for u in users]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[tuple[float, float]] = []
        first_minute: float | None = None
        deadline = started + ns.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(ns.every)
            elapsed = time.monotonic() - started
            samples.append((elapsed, rss_mb(pid)))
            if first_minute is None and elapsed >= 60:
                first_minute = samples[-1][1]
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
        elapsed = time.monotonic() - started
        with grpc.secure_channel(
            server.grpc_target, grpc.ssl_channel_credentials(server.ca_pem)
        ) as channel:
            floor = grpc_floor(channel)
        latency = summarize(latencies)
        rows = [
            ("RSS idle (after start)", f"{idle:.0f} MB"),
            ("RSS idle with the QASM parser processes", f"{idle_tree:.0f} MB"),
            ("RSS after 1 minute", f"{(first_minute or samples[0][1]):.0f} MB"),
            (f"RSS after {ns.minutes:g} minutes", f"{samples[-1][1]:.0f} MB"),
            ("RSS peak", f"{max(m for _, m in samples):.0f} MB"),
            ("RSS at the end with the QASM parser processes", f"{tree_rss_mb(pid):.0f} MB"),
            ("RSS slope, second half", f"{slope_mb_per_10min(samples):+.1f} MB / 10 min"),
            ("jobs completed", f"{len(latencies):,} ({len(latencies) / elapsed:.0f} jobs/s)"),
            ("client errors", str(len(errors))),
            (
                "submit→result p50 / p99",
                f"{latency.p50:.1f} / {latency.p99:.1f} ms ({latency.ratio(floor)} floor)",
            ),
            ("floor: gRPC health Check (TLS)", f"{floor.p50:.2f} ms"),
        ]
    finally:
        if driver is not None:
            driver.terminate()
        server.stop()
        if database_url:
            drop_postgres(database_url)
    print_section(
        f"### Memory: idle and a {ns.minutes:g}-minute soak ({ns.database})",
        markdown_table(["what", "value"], rows),
        f"One `qpi serve` and one real `qpi-driver --executor mock`; {ns.clients} SDK clients "
        f"submit a Bell job and wait for it, in a closed loop. Load average at the end: "
        f"{load_average()}.",
        ns.markdown,
    )


if __name__ == "__main__":
    main()
