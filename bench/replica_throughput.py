"""Replicas on PostgreSQL: completed jobs per second with one `qpi serve` and with two.

The load of `bench/throughput.py` (zero-work driver processes, `--clients` threads each
submitting Bell jobs as fast as they are answered) against a fresh database on the same
PostgreSQL server, in two configurations with the same drivers, clients and jobs:

* 1 replica: every driver and every client on replica A;
* 2 replicas: drivers and clients split between A and B (driver and client i on replica
  i mod 2), so jobs are submitted on both and each replica dispatches to its own drivers.

Each row gives completed jobs per second (from the first submit until no job is pending or
running), the submit RPC's latency under that load against the floor (a bare gRPC health
Check on A, measured right after the run), and each server process's CPU time per job
(user + system, from /proc). Configurations alternate over `--rounds` so a change in the
machine's load hits both. Every run checks that each submitted job completed exactly once:
the completed count equals the jobs submitted, and the drivers together received exactly
one assignment per job.

    .venv/bin/python bench/replica_throughput.py [--jobs 2000] [--clients 10] [--drivers 2]
        [--capacity 4] [--rounds 2] [--markdown]
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    Stats,
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    process_cpu_seconds,
    summarize,
)
from throughput import BELL, RESULT, TIMERS, wait_for  # noqa: E402

from qpi.v1 import driver_service_pb2 as dpb  # noqa: E402
from qpi.v1 import (  # noqa: E402
    driver_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from tests.support.harness import drop_postgres, fresh_postgres_url  # noqa: E402
from tests.support.processes import ServeProcess  # noqa: E402

WARM_UP_PER_CLIENT = 5


def counting_driver(
    target: str,
    ca_pem: bytes,
    token: str,
    capacity: int,
    stop: Any,
    connected: Any,
    report: Any,
) -> None:
    """`throughput.zero_work_driver` that also counts its welcome in `connected` and, when
    stopped, puts the id of every job it was assigned on `report`."""
    out: queue.Queue[dpb.ConnectRequest | None] = queue.Queue()
    assigned: list[str] = []

    def requests() -> Iterator[dpb.ConnectRequest]:
        yield dpb.ConnectRequest(
            hello=dpb.DriverHello(name="zero", capacity=capacity, executes_jobs=True)
        )
        while (item := out.get()) is not None:
            yield item

    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca_pem))
    stub = driver_service_pb2_grpc.DriverServiceStub(channel)
    call = stub.Connect(requests(), metadata=(("authorization", f"Bearer {token}"),))

    def pump() -> None:
        try:
            for message in call:
                kind = message.WhichOneof("message")
                if kind == "welcome":
                    with connected.get_lock():
                        connected.value += 1
                if kind != "job_assignment":
                    continue
                a = message.job_assignment
                assigned.append(a.job_id)
                out.put(
                    dpb.ConnectRequest(
                        job_result=dpb.JobResult(
                            job_id=a.job_id,
                            attempt=a.attempt,
                            result_json=RESULT,
                            execution_seconds=0.0,
                        )
                    )
                )
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    stop.wait()
    out.put(None)
    call.cancel()
    report.put(list(assigned))


class CountingDrivers:
    """Zero-work driver processes of one QPU, one per token; driver i is connected to
    targets[i mod len(targets)]."""

    def __init__(self, targets: list[tuple[str, bytes]], tokens: list[str], capacity: int):
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self.connected = ctx.Value("i", 0)
        self._report: Any = ctx.Queue()
        self._procs = [
            ctx.Process(
                target=counting_driver,
                args=(
                    *targets[i % len(targets)],
                    token,
                    capacity,
                    self._stop,
                    self.connected,
                    self._report,
                ),
                daemon=True,
            )
            for i, token in enumerate(tokens)
        ]
        for proc in self._procs:
            proc.start()
        wait_for(lambda: self.connected.value == len(tokens), 60, "every driver welcomed")

    def close(self) -> list[str]:
        """Stops the drivers; returns every job id they were assigned, duplicates kept."""
        self._stop.set()
        assigned: list[str] = []
        for _ in self._procs:
            assigned += self._report.get(timeout=30)
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        return assigned


class Cluster:
    """`replicas` `qpi serve` processes (TLS) on one fresh PostgreSQL database."""

    def __init__(self, replicas: int, clients: int) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="qpi-bench-"))
        self.database_url = fresh_postgres_url()
        self.servers: list[ServeProcess] = []
        self.channels: list[grpc.Channel] = []
        try:
            for name in "ab"[:replicas]:
                server = ServeProcess(
                    self._root / name, database_url=self.database_url, timers=TIMERS
                )
                self.servers.append(server.start())
            a = self.servers[0]
            self._admin = a.admin()
            self._qpu = self._admin.create_qpu("bench", num_qubits=4, create_driver=False).qpu
            self.tokens = [
                a.create_user(f"bench{i}@example.com", qpu_seconds=1e9) for i in range(clients)
            ]
            self.admin_token = str(a.admin().create_api_token("bench").token)
            self.channels = [
                grpc.secure_channel(s.grpc_target, grpc.ssl_channel_credentials(s.ca_pem))
                for s in self.servers
            ]
        except BaseException:
            self.close()
            raise
        self.stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in self.channels]
        self.request = job_service_pb2.CreateJobRequest(
            payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=BELL)], shots=100),
            qpu="bench",
        )

    def drivers(self, count: int, capacity: int) -> CountingDrivers:
        """`count` zero-work drivers, each registered with its own token: the server keeps
        one stream per token (a second, silent stream with the same token replaces the
        first), so drivers sharing a token would not add up."""
        targets = [(s.grpc_target, s.ca_pem) for s in self.servers]
        tokens = [
            self._admin.create_driver(self._qpu.id, f"zero{i}").access_token for i in range(count)
        ]
        return CountingDrivers(targets, tokens, capacity)

    def submit(self, client: int) -> float:
        """One CreateJob by client `client` on its replica; its latency in ms."""
        stub = self.stubs[client % len(self.stubs)]
        auth = (("authorization", f"Bearer {self.tokens[client]}"),)
        t0 = time.perf_counter()
        stub.CreateJob(self.request, metadata=auth)
        return (time.perf_counter() - t0) * 1e3

    def count(self, *states: job_pb2.Job.State.ValueType) -> int:
        """Jobs of every user in one of `states` (asked of replica A)."""
        response = self.stubs[0].ListJobs(
            job_service_pb2.ListJobsRequest(states=states, all_users=True, page_size=1),
            metadata=(("authorization", f"Bearer {self.admin_token}"),),
        )
        return int(response.total_size)

    def open_jobs(self) -> int:
        return self.count(job_pb2.Job.STATE_PENDING, job_pb2.Job.STATE_RUNNING)

    def cpu_seconds(self) -> list[float]:
        """CPU seconds each replica's server process used so far."""
        pids = [s.proc.pid for s in self.servers if s.proc is not None]
        return [process_cpu_seconds(pid) for pid in pids]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for server in reversed(self.servers):
            server.stop()
        drop_postgres(self.database_url)


@dataclass(frozen=True)
class Run:
    replicas: int
    rate: float  # completed jobs per second
    submit: Stats  # submit RPC latency under load, ms
    cpu_ms: list[float]  # each replica's server CPU per measured job, ms
    floor: Stats


def submit_all(cluster: Cluster, clients: int, per_client: int) -> list[float]:
    """`per_client` submits from each of `clients` threads; every latency in ms."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        mine = [cluster.submit(index) for _ in range(per_client)]
        with lock:
            latencies.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies


def measure(replicas: int, ns: argparse.Namespace) -> Run:
    """One configuration on a fresh database: warm-up, the measured run, the checks."""
    per_client = ns.jobs // ns.clients
    cluster = Cluster(replicas, ns.clients)
    try:
        drivers = cluster.drivers(ns.drivers, ns.capacity)
        try:
            submit_all(cluster, ns.clients, WARM_UP_PER_CLIENT)
            wait_for(lambda: cluster.open_jobs() == 0, 120, "warm-up jobs completed")
            cpu0, t0 = cluster.cpu_seconds(), time.perf_counter()
            latencies = submit_all(cluster, ns.clients, per_client)
            wait_for(lambda: cluster.open_jobs() == 0, 600, "every job completed")
            elapsed = time.perf_counter() - t0
            cpu1 = cluster.cpu_seconds()
        finally:
            assigned = drivers.close()
        floor = grpc_floor(cluster.channels[0])
        submitted = (per_client + WARM_UP_PER_CLIENT) * ns.clients
        completed = cluster.count(job_pb2.Job.STATE_COMPLETED)
        if completed != submitted:
            raise AssertionError(f"{completed} jobs completed, {submitted} submitted")
        if len(assigned) != submitted or len(set(assigned)) != submitted:
            raise AssertionError(
                f"drivers got {len(assigned)} assignments of {len(set(assigned))} jobs, "
                f"{submitted} submitted: a job was dispatched twice or never"
            )
    finally:
        cluster.close()
    measured = per_client * ns.clients
    return Run(
        replicas=replicas,
        rate=measured / elapsed,
        submit=summarize(latencies),
        cpu_ms=[
            (after - before) * 1e3 / measured for before, after in zip(cpu0, cpu1, strict=True)
        ],
        floor=floor,
    )


def row(run: Run, label: str) -> list[str]:
    return [
        label,
        f"{run.rate:.0f} jobs/s",
        f"{run.submit.p50:.2f} ms",
        f"{run.submit.p99:.2f} ms",
        run.submit.ratio(run.floor),
        f"{run.floor.p50:.2f} ms",
        " + ".join(f"{cpu:.2f}" for cpu in run.cpu_ms) + " ms",
        f"{sum(run.cpu_ms):.2f} ms",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000, help="measured jobs per run")
    parser.add_argument("--clients", type=int, default=10, help="submitting threads")
    parser.add_argument("--drivers", type=int, default=2, help="zero-work driver processes")
    parser.add_argument("--capacity", type=int, default=4, help="jobs each driver holds")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--markdown", action="store_true")
    ns = parser.parse_args()
    runs: list[Run] = []
    for index in range(ns.rounds):
        for replicas in (1, 2) if index % 2 == 0 else (2, 1):
            runs.append(measure(replicas, ns))
    rows = [
        row(run, f"{run.replicas} replica{'s' if run.replicas > 1 else ''}, round {i // 2 + 1}")
        for i, run in enumerate(runs)
    ]
    one = statistics.median(run.rate for run in runs if run.replicas == 1)
    two = statistics.median(run.rate for run in runs if run.replicas == 2)
    table = markdown_table(
        [
            "replicas",
            "completed",
            "submit p50 under load",
            "submit p99",
            "× floor",
            "floor (health Check on A)",
            "server CPU per job (A + B)",
            "all servers' CPU per job",
        ],
        rows,
    )
    print_section(
        "### Replicas on PostgreSQL: throughput with 1 and 2 replicas",
        table,
        f"`bench/replica_throughput.py`: `qpi serve` replicas (TLS) on a fresh database of "
        f"one PostgreSQL server per run; {ns.drivers} zero-work driver process(es) × capacity "
        f"{ns.capacity} and {ns.clients} client threads submitting {ns.jobs} Bell jobs (after "
        f"{WARM_UP_PER_CLIENT} warm-up jobs each); with 2 replicas, driver and client i use "
        f"replica i mod 2. Every run checked: completed jobs = jobs submitted, one driver "
        f"assignment per job. Median of {ns.rounds} round(s): 1 replica {one:.0f} jobs/s, "
        f"2 replicas {two:.0f} jobs/s ({two / one:.2f}× one). Load average {load_average()}.",
        ns.markdown,
    )


if __name__ == "__main__":
    main()
