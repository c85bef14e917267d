"""Single-server throughput and latency: a real `qpi serve`, zero-work drivers, N clients.

Measures, against one `qpi serve` process (TLS, SQLite or PostgreSQL) and the floor of the
same run (a bare gRPC health Check):

* idle: the submit RPC alone (each after the previous job completed), back to back, and
  submit→result through the SDK (`submit_job` + `wait`);
* load: completed Bell jobs per second with zero-work drivers ×1/×2/×4 (each a separate
  process answering every assignment at once), `--clients` threads submitting as fast as
  they are answered (closed loop: the throughput at saturation), and the submit RPC's
  latency there;
* paced load: submits offered at the goal's rate (open loop, `--paced-rate`), and the submit
  RPC's latency while the server carries that load;
* one real `qpi-driver --executor mock` daemon (capacity 1), with and without prefetch:
  completed jobs per second end to end;
* with every load row, the server process's CPU time per completed job (user + system,
  from /proc), which a shared machine's load average does not distort.

    .venv/bin/python bench/throughput.py [--database sqlite|postgres] [--jobs 2000]
        [--clients 10] [--drivers 1 2 4] [--real-jobs 1000] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    Stats,
    floor_check,
    grpc_floor,
    load_average,
    machine_speed,
    markdown_table,
    stats_row,
    summarize,
)

from qpi.v1 import driver_service_pb2 as dpb  # noqa: E402
from qpi.v1 import (  # noqa: E402
    driver_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,  # noqa: E402
)

BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)
RESULT = json.dumps(
    {"shots": 1, "success": True, "circuit_results": [{"counts": {"00": 1, "11": 0}, "shots": 1}]}
)
TIMERS = {"--heartbeat-timeout": "600s", "--job-timeout": "600s", "--recovery-interval": "5s"}


def zero_work_driver(target: str, ca_pem: bytes, token: str, capacity: int, stop: Any) -> None:
    """A driver process that answers every assignment at once (no execution)."""
    out: queue.Queue[dpb.ConnectRequest | None] = queue.Queue()

    def requests():  # type: ignore[no-untyped-def]
        yield dpb.ConnectRequest(
            hello=dpb.DriverHello(name="zero", capacity=capacity, executes_jobs=True)
        )
        while (item := out.get()) is not None:
            yield item

    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca_pem))
    stub = driver_service_pb2_grpc.DriverServiceStub(channel)
    call = stub.Connect(requests(), metadata=[("authorization", f"Bearer {token}")])

    def pump() -> None:
        try:
            for message in call:
                if message.WhichOneof("message") != "job_assignment":
                    continue
                a = message.job_assignment
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


class Drivers:
    """Zero-work driver processes of one QPU, one per driver token (the server keeps one
    stream per token: drivers sharing a token would replace each other's streams)."""

    def __init__(self, target: str, ca_pem: bytes, tokens: list[str], capacity: int):
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs = [
            ctx.Process(
                target=zero_work_driver,
                args=(target, ca_pem, token, capacity, self._stop),
                daemon=True,
            )
            for token in tokens
        ]
        for proc in self._procs:
            proc.start()

    def close(self) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _set_synchronous_commit(url: str, value: str) -> None:
    """What docs/deployment.md tells an operator to run for SQLite-like durability."""
    import psycopg

    from tests.support.harness import PG_ADMIN_URL

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {value}')


class Bench:
    """One server, its QPU and users."""

    def __init__(self, database: str, clients: int, synchronous_commit: str = "on") -> None:
        from tests.support.harness import fresh_postgres_url
        from tests.support.processes import ServeProcess

        self._root = Path(tempfile.mkdtemp(prefix="qpi-bench-"))
        self.database_url = fresh_postgres_url() if database == "postgres" else ""
        if self.database_url and synchronous_commit != "on":
            _set_synchronous_commit(self.database_url, synchronous_commit)
        self.server = ServeProcess(self._root, database_url=self.database_url, timers=TIMERS)
        self.server.start()
        self.driver_tokens = [self.server.create_qpu("bench", num_qubits=4)]
        self.tokens = [
            self.server.create_user(f"bench{i}@example.com", qpu_seconds=1e9)
            for i in range(clients)
        ]
        self.admin = self.server.admin()
        self.admin_token = str(self.admin.create_api_token("bench").token)
        self.channel = grpc.secure_channel(
            self.server.grpc_target, grpc.ssl_channel_credentials(self.server.ca_pem)
        )
        self.jobs = job_service_pb2_grpc.JobServiceStub(self.channel)
        self.request = job_service_pb2.CreateJobRequest(
            payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=BELL)], shots=100),
            qpu="bench",
        )

    def drivers(self, count: int, capacity: int) -> Drivers:
        qpu_id = self.admin.get_qpu("bench").id
        while len(self.driver_tokens) < count:
            name = f"zero{len(self.driver_tokens)}"
            self.driver_tokens.append(self.admin.create_driver(qpu_id, name).access_token)
        drivers = Drivers(
            self.server.grpc_target, self.server.ca_pem, self.driver_tokens[:count], capacity
        )
        wait_for(
            lambda: self.admin.get_qpu("bench").status == "online",
            60,
            "drivers online",
        )
        time.sleep(0.5 * count)  # let every driver's stream open
        return drivers

    def submit(self, token: str, request: Any = None) -> float:
        t0 = time.perf_counter()
        self.jobs.CreateJob(
            request or self.request, metadata=[("authorization", f"Bearer {token}")]
        )
        return (time.perf_counter() - t0) * 1e3

    def submit_returning_id(self, token: str) -> tuple[float, str]:
        """(milliseconds, job id) of one submit."""
        t0 = time.perf_counter()
        job = self.jobs.CreateJob(self.request, metadata=[("authorization", f"Bearer {token}")])
        return (time.perf_counter() - t0) * 1e3, str(job.job.id)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process used so far."""
        assert self.server.proc is not None
        fields = Path(f"/proc/{self.server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def real_driver(self, prefetch: str) -> Any:
        """One `qpi-driver --executor mock` daemon on its own QPU, with `--prefetch` unless
        "default" (for daemons older than the option); returns (process, request)."""
        from tests.support.processes import DriverProcess

        name = f"real{prefetch}"
        token = self.server.create_qpu(name, num_qubits=4)
        extra = () if prefetch == "default" else ("--prefetch", prefetch)
        driver = DriverProcess(self.server, token, self._root, name=name, extra_args=extra)
        driver.start().wait_connected()
        request = job_service_pb2.CreateJobRequest()
        request.CopyFrom(self.request)
        request.qpu = name
        return driver, request

    def open_jobs(self) -> int:
        response = self.jobs.ListJobs(
            job_service_pb2.ListJobsRequest(
                states=[job_pb2.Job.STATE_PENDING, job_pb2.Job.STATE_RUNNING],
                all_users=True,
                page_size=1,
            ),
            metadata=[("authorization", f"Bearer {self.admin_token}")],
        )
        return int(response.total_size)

    def close(self) -> None:
        from tests.support.harness import drop_postgres

        self.channel.close()
        self.server.stop()
        if self.database_url:
            drop_postgres(self.database_url)


def idle_rows(bench: Bench, samples: int) -> tuple[Stats, list[tuple[str, Stats]]]:
    """The floor, and the rows it divides: the submit RPC alone, and submit→result via the
    SDK, one at a time.

    "Idle" means nothing else in flight: each timed submit starts after the previous job
    completed (the wait is not timed). Back-to-back submits, whose predecessors are still
    being dispatched and stored while they run, are a row of their own.
    """
    token = bench.tokens[0]
    client = bench.server.user(token)
    # The floor these rows are divided by, sampled in runs spread over their samples.
    floor_sample = floor_check(bench.channel)
    floor: list[float] = []
    for _ in range(20):
        bench.submit(token)
    back_to_back = summarize([bench.submit(token) for _ in range(samples)])
    alone = []
    for index in range(samples):
        if index % FLOOR_EVERY == 0:
            floor += floor_run(floor_sample)
        elapsed, job_id = bench.submit_returning_id(token)
        alone.append(elapsed)
        client.wait(job_id, timeout=60)
    round_trips = []
    for index in range(samples // 2 + 10):
        if index >= 10 and index % FLOOR_EVERY == 0:
            floor += floor_run(floor_sample)
        t0 = time.perf_counter()
        job = client.submit_job([BELL], shots=100, qpu_target="bench")
        client.wait(job.id, timeout=60)
        round_trips.append((time.perf_counter() - t0) * 1e3)
    measured = round_trips[10:]
    return summarize(floor), [
        ("submit RPC alone, idle (the previous job completed)", summarize(alone)),
        ("submit→result via SDK (submit_job + wait), idle", summarize(measured)),
        ("submit RPC back to back (the previous jobs still dispatching)", back_to_back),
        (
            "original design, simulated: same job + 1 s dispatch poll + 5 s client poll",
            summarize(original_design(measured)),
        ),
    ]


FLOOR_EVERY = 10
"""Idle samples between two runs of floor samples."""


def floor_run(sample: Callable[[], float]) -> list[float]:
    """A run of back-to-back floor samples, as the floor was measured before (on a warm
    server: the lowest floor, so the ratios err high), minus the first few, which pay for
    the previous job's follow-up; spread over the idle rows by the caller, so a machine
    whose speed drifts during the run moves the floor and the rows alike (the floor's
    median was seen to drift by up to 2× between runs minutes apart)."""
    samples = [sample() for _ in range(13)]
    return samples[3:]


def original_design(measured_ms: list[float]) -> list[float]:
    """The original design's submit→result for the same jobs: a job waits for the next
    1-second dispatch poll, and its result for the client's next 5-second poll (both at a
    uniformly random phase), on top of the work measured here."""
    rng = random.Random(15)
    return [m + rng.uniform(0, 1_000) + rng.uniform(0, 5_000) for m in measured_ms]


def load_run(
    bench: Bench, jobs: int, clients: int, request: Any = None
) -> tuple[float, Stats, float]:
    """`jobs` submits spread over `clients` threads; (completed jobs/s, submit latency,
    server CPU milliseconds per job)."""
    per_client = jobs // clients
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        token = bench.tokens[index]
        mine = [bench.submit(token, request) for _ in range(per_client)]
        with lock:
            latencies.extend(mine)

    cpu0, t0 = bench.cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wait_for(lambda: bench.open_jobs() == 0, 600, "every job completed")
    elapsed = time.perf_counter() - t0
    cpu_ms = (bench.cpu_seconds() - cpu0) * 1e3 / (per_client * clients)
    return per_client * clients / elapsed, summarize(latencies), cpu_ms


def paced_run(bench: Bench, jobs: int, rate: float) -> tuple[float, Stats, float]:
    """`jobs` submits at an offered `rate` per second (open loop: paced arrivals that do not
    wait for earlier answers, round-robin over the users); (completed jobs/s, submit
    latency, server CPU milliseconds per job).

    A closed loop of N clients measures, at saturation, N / throughput whatever the server
    does; paced arrivals measure the latency a submit meets while the server carries that
    load. Latency counts from the moment a submit was due, not from when it was sent, so a
    stalled sender cannot hide a slow server (no coordinated omission).
    """
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    outstanding = threading.Semaphore(0)
    interval = 1.0 / rate
    cpu0, t0 = bench.cpu_seconds(), time.perf_counter()
    for i in range(jobs):
        due = t0 + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        token = bench.tokens[i % len(bench.tokens)]
        future = bench.jobs.CreateJob.future(
            bench.request, metadata=[("authorization", f"Bearer {token}")]
        )

        def answered(done: Any, due: float = due) -> None:
            elapsed = (time.perf_counter() - due) * 1e3
            with lock:
                if done.exception() is None:
                    latencies.append(elapsed)
                else:
                    failures.append(done.exception())
            outstanding.release()

        future.add_done_callback(answered)
    for _ in range(jobs):
        outstanding.acquire()
    if failures:
        raise RuntimeError(f"{len(failures)} paced submits failed: {failures[0]}")
    wait_for(lambda: bench.open_jobs() == 0, 600, "every job completed")
    elapsed = time.perf_counter() - t0
    cpu_ms = (bench.cpu_seconds() - cpu0) * 1e3 / jobs
    return jobs / elapsed, summarize(latencies), cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--drivers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--capacity", type=int, default=4, help="jobs each driver holds")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--real-jobs", type=int, default=1000, help="jobs for the real-driver rows (0: skip)"
    )
    parser.add_argument(
        "--real-prefetch",
        nargs="*",
        default=["0", "1"],
        help="--prefetch of each real-driver row ('default': the daemon's own)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0.0,
        help="offered submits/s of the open-loop row (default: the goal, 300 on SQLite, "
        "150 on PostgreSQL; 0 with --no-paced)",
    )
    parser.add_argument("--no-paced", action="store_true", help="skip the open-loop row")
    parser.add_argument(
        "--paced-drivers",
        type=int,
        default=0,
        help="zero-work drivers of the open-loop row (default: the --drivers count whose "
        "closed-loop row completed the most jobs/s; each driver is a process of its own, "
        "which a 2-core machine also has to run, so more is not always faster)",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        default="on",
        help="PostgreSQL only: the database's synchronous_commit (off: a commit does not "
        "wait for its WAL flush, SQLite WAL + synchronous=NORMAL's durability)",
    )
    parser.add_argument("--markdown", action="store_true")
    ns = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = ns.database
    bench = Bench(ns.database, ns.clients, ns.synchronous_commit)
    try:
        drivers = bench.drivers(1, ns.capacity)
        try:
            # The floor is sampled between the idle rows' samples.
            floor, idle = idle_rows(bench, ns.samples)
        finally:
            drivers.close()
        loads: list[tuple[str, float, Stats, float]] = []
        fastest = (0.0, 1)  # (completed jobs/s, driver count) of the best closed-loop row
        for count in ns.drivers:
            drivers = bench.drivers(count, ns.capacity)
            try:
                rate, submit, cpu = load_run(bench, ns.jobs, ns.clients)
            finally:
                drivers.close()
            label = f"{count} zero-work driver(s) × capacity {ns.capacity}"
            loads.append((label, rate, submit, cpu))
            fastest = max(fastest, (rate, count))
        if not ns.no_paced:
            count = ns.paced_drivers or fastest[1]
            offered = ns.paced_rate or goal_rate(ns.database)
            drivers = bench.drivers(count, ns.capacity)
            try:
                rate, submit, cpu = paced_run(bench, ns.jobs, offered)
            finally:
                drivers.close()
            label = (
                f"{count} zero-work driver(s) × capacity {ns.capacity}, submits paced at "
                f"{offered:.0f}/s (open loop)"
            )
            loads.append((label, rate, submit, cpu))
        for prefetch in ns.real_prefetch if ns.real_jobs else ():
            daemon, request = bench.real_driver(prefetch)
            try:
                rate, submit, cpu = load_run(bench, ns.real_jobs, ns.clients, request)
            finally:
                daemon.terminate()
            option = "" if prefetch == "default" else f", --prefetch {prefetch}"
            label = f"1 real `qpi-driver --executor mock` (capacity 1{option})"
            loads.append((label, rate, submit, cpu))
        floor_after = grpc_floor(bench.channel)
    finally:
        bench.close()
    report(ns, floor, floor_after, idle, loads)


PACED_KEPT_UP = 0.95
"""Completed jobs/s over offered submits/s at which the open-loop row kept up."""


def goal_rate(database: str) -> float:
    """Issue 15's completed jobs/s goal for one server."""
    return 300.0 if database == "sqlite" else 150.0


def goals(
    database: str,
    floor: Stats,
    idle: list[tuple[str, Stats]],
    loads: list[tuple[str, float, Stats, float]],
    offered: float = 0.0,
) -> str:
    """Issue 15's goals against this run's figures (`offered`: the open-loop row's rate)."""
    target = goal_rate(database)
    zero = [load for load in loads if "zero-work" in load[0] and "paced" not in load[0]]
    paced = [load for load in loads if "paced" in load[0]]
    # The p99 counts only under the goal's load, carried: offered at its rate and
    # completed at (nearly) the offered one, the last job's own latency the only shortfall.
    shortfall = ""
    if paced and offered < target:
        shortfall = f" (offered below the goal's {target:.0f}/s)"
    elif paced and paced[0][1] < PACED_KEPT_UP * offered:
        shortfall = " (the jobs completed slower than they were offered)"
    real = sorted((load[1] for load in loads if "real" in load[0]), reverse=True)
    submit, round_trip = idle[0][1], idle[1][1]

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    best = ""
    if zero:  # runs with --drivers and no count give the idle rows alone
        label, rate, _, _ = max(zero, key=lambda load: load[1])
        best = f"≥ {target:.0f} completed jobs/s: best {rate:.0f} with {label}, "
        best += f"{verdict(rate >= target)}; "
    return (
        f"Goals ({database}): {best}"
        + (
            f"one real mock driver ≥ 150 jobs/s: {real[0]:.0f}, {verdict(real[0] >= 150)}; "
            if real
            else ""
        )
        + f"submit p50 idle ≤ 3× floor: "
        f"{submit.p50 / floor.p50:.1f}×, {verdict(submit.p50 <= 3 * floor.p50)}; "
        + (
            f"submit p99 under that load ({paced[0][0].split(', ')[-1]}, "
            f"{paced[0][1]:.0f} completed jobs/s) ≤ 20 ms: "
            f"{paced[0][2].p99:.1f} ms, {verdict(not shortfall and paced[0][2].p99 <= 20)}"
            f"{shortfall}; "
            if paced
            else ""
        )
        + "submit→result p50 via the SDK ≤ 10× floor: "
        f"{round_trip.p50 / floor.p50:.1f}×, {verdict(round_trip.p50 <= 10 * floor.p50)}."
    )


def report(
    ns: argparse.Namespace,
    floor: Stats,
    floor_after: Stats,
    idle: list[tuple[str, Stats]],
    loads: list[tuple[str, float, Stats, float]],
) -> None:
    offered = 0.0 if ns.no_paced else ns.paced_rate or goal_rate(ns.database)
    rows = [stats_row("floor: gRPC health Check (TLS), between the idle samples", floor, floor)]
    rows += [stats_row(label, stats, floor) for label, stats in idle]
    load_rows = [
        [
            label,
            f"{rate:.0f} jobs/s",
            f"{submit.p50:.2f} ms",
            f"{submit.p99:.2f} ms",
            submit.ratio(floor),
            f"{cpu:.2f} ms",
        ]
        for label, rate, submit, cpu in loads
    ]
    if ns.markdown:
        durability = (
            f", synchronous_commit={ns.synchronous_commit}" if ns.database == "postgres" else ""
        )
        option = (
            f" --synchronous-commit {ns.synchronous_commit}"
            if ns.synchronous_commit != "on"
            else ""
        )
        print(f"### Single-server throughput ({ns.database}{durability})\n")
        print(
            f"`bench/throughput.py --database {ns.database}{option}`: one `qpi serve` (TLS), "
            "Bell jobs, "
            f"{ns.clients} client threads submitting {ns.jobs} jobs per run. "
            f"Load average {load_average()}; floor after the runs "
            f"{floor_after.p50:.2f} ms. Machine: {machine_speed()}.\n"
        )
        print(markdown_table(["what", "p50", "p99", "× floor"], rows))
        print()
        print(
            markdown_table(
                [
                    "drivers",
                    "completed",
                    "submit p50 under load",
                    "submit p99",
                    "× floor",
                    "server CPU per job",
                ],
                load_rows,
            )
        )
        print()
        print(goals(ns.database, floor, idle, loads, offered))
        return
    print(f"database={ns.database} load average {load_average()}; machine: {machine_speed()}")
    for row in rows:
        print("  " + " | ".join(row))
    for load_row in load_rows:
        print("  " + " | ".join(load_row))
    print(goals(ns.database, floor, idle, loads, offered))


if __name__ == "__main__":
    main()
