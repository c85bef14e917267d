"""Replicas on PostgreSQL: a job submitted on replica A reaches a driver held by replica B.

Two `qpi serve` processes (TLS) on one fresh PostgreSQL database; a zero-work driver is
connected to B only. Jobs are submitted one at a time, alternately on B (same replica) and
on A (cross replica: B's dispatcher is woken by the LISTEN/NOTIFY relay; the safety poll
is set to an hour, so nothing else can wake it). Each job's latency is from the submit
call to the assignment reaching the driver; "after the submit returned" is the dispatch's
own share (negative when the job reached the driver before the submit's answer).

    .venv/bin/python bench/replicas.py [--jobs 300] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    stats_row,
    summarize,
)
from dispatch_latency import QASM, InstantDriver  # noqa: E402

from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc  # noqa: E402
from tests.support.harness import drop_postgres, fresh_postgres_url  # noqa: E402
from tests.support.processes import ServeProcess  # noqa: E402

TIMERS = {
    "--dispatch-poll-interval": "3600s",
    "--heartbeat-timeout": "600s",
    "--job-timeout": "600s",
}


def _wait_for(arrivals: dict[str, float], job_id: str) -> float:
    deadline = time.monotonic() + 30
    while job_id not in arrivals:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} never reached the driver")
        time.sleep(0.0002)
    return arrivals[job_id]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300, help="jobs per path (same, cross)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    url = fresh_postgres_url()
    root = Path(tempfile.mkdtemp(prefix="qpi-bench-"))
    replicas: list[ServeProcess] = []
    try:
        for name in ("a", "b"):
            replica = ServeProcess(root / name, database_url=url, timers=TIMERS)
            replicas.append(replica.start())
        a, b = replicas
        driver_token = a.create_qpu("bench")
        user = a.create_user("bench@example.com", qpu_seconds=1e9)
        channels = {
            r: grpc.secure_channel(r.grpc_target, grpc.ssl_channel_credentials(r.ca_pem))
            for r in replicas
        }
        driver = InstantDriver(
            b.grpc_target, driver_token, 1, grpc.ssl_channel_credentials(b.ca_pem)
        )
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=QASM)], shots=1)
        stubs = {
            "same": job_service_pb2_grpc.JobServiceStub(channels[b]),
            "cross": job_service_pb2_grpc.JobServiceStub(channels[a]),
        }
        since_call: dict[str, list[float]] = {"same": [], "cross": []}
        since_return: dict[str, list[float]] = {"same": [], "cross": []}
        request = job_service_pb2.CreateJobRequest(payload=payload, qpu="bench")
        auth = [("authorization", f"Bearer {user}")]
        for i in range(args.jobs * 2 + 20):
            path = "cross" if i % 2 else "same"
            t0 = time.perf_counter()
            job = stubs[path].CreateJob(request, metadata=auth).job
            t1 = time.perf_counter()
            arrived = _wait_for(driver.arrivals, job.id)
            if i >= 20:  # warm-up: connections, caches
                since_call[path].append((arrived - t0) * 1e3)
                since_return[path].append((arrived - t1) * 1e3)
        floor = grpc_floor(channels[a])
        driver.close()
        rows = [stats_row("floor: gRPC health Check (TLS)", floor, floor)]
        for path, label in (("same", "same replica"), ("cross", "cross replica")):
            rows += [
                stats_row(f"{label}: submit call → driver", summarize(since_call[path]), floor),
                stats_row(
                    f"{label}: submit returned → driver", summarize(since_return[path]), floor
                ),
            ]
        print_section(
            "### Replicas on PostgreSQL: cross-replica dispatch",
            markdown_table(["what", "p50", "p99", "× floor"], rows),
            f"`bench/replicas.py`: two `qpi serve` replicas (TLS) on one PostgreSQL database, "
            f"a zero-work capacity-1 driver on B, {args.jobs} sequential jobs per path "
            f"(alternating). The dispatch safety poll is 1 h: cross-replica wake-ups come "
            f"from LISTEN/NOTIFY only. Load average {load_average()}.",
            args.markdown,
        )
    finally:
        for replica in reversed(replicas):
            replica.stop()
        drop_postgres(url)


if __name__ == "__main__":
    main()
