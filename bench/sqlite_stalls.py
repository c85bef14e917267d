"""SQLite under saturation: how long the database thread's calls take, with the WAL
checkpointed by a thread of its own (the server's way) and by the committing thread
(SQLite's default: every 1,000 pages, with two `fsync`s before the commit returns).

Each round starts an in-process server (TLS, a fresh SQLite file) twice, once per way,
with zero-work drivers and closed-loop submitters in child processes, and times every
call on the database thread. The other way is obtained by patching the server: the
checkpoint thread is not started and the committing connections get SQLite's default.

    .venv/bin/python bench/sqlite_stalls.py [--seconds 20] [--rounds 2] [--markdown]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import load_average, machine_speed, markdown_table, percentile, print_section  # noqa: E402
from throughput import BELL, zero_work_driver  # noqa: E402

from qpi.server.services.database import Database  # noqa: E402
from qpi.server.store import database as store_database  # noqa: E402
from qpi.server.store.sqlite_checkpoints import WalCheckpointer  # noqa: E402
from tests.support.harness import ServerHarness, make_settings  # noqa: E402

SQLITE_DEFAULT_PAGES = 1000
SUBMITTERS = 6
DRIVERS = 2


def submitters(target: str, ca_pem: bytes, tokens: list[str], seconds: float, out: Any) -> None:
    """Child process: one thread per token submitting Bell jobs back to back."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca_pem))
    stub = job_service_pb2_grpc.JobServiceStub(channel)
    request = job_service_pb2.CreateJobRequest(
        payload=job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=BELL)], shots=100), qpu="bench"
    )
    end = time.monotonic() + seconds
    latencies: list[float] = []
    refused = [0]

    def submit(token: str) -> None:
        metadata = [("authorization", f"Bearer {token}")]
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                stub.CreateJob(request, metadata=metadata)
            except grpc.RpcError:  # a full queue: counted, not timed
                refused[0] += 1
                time.sleep(0.01)
                continue
            latencies.append((time.perf_counter() - t0) * 1e3)

    with ThreadPoolExecutor(len(tokens)) as pool:
        for done in [pool.submit(submit, token) for token in tokens]:
            done.result()
    channel.close()
    out.put((latencies, refused[0]))


@contextmanager
def timed_database_calls(calls: list[float]) -> Iterator[None]:
    """Records how long every call on the database thread takes (milliseconds)."""
    original = Database.run

    async def run(self: Database, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def timed() -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                calls.append((time.perf_counter() - t0) * 1e3)

        return await original(self, timed)

    Database.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        Database.run = original  # type: ignore[method-assign]


@contextmanager
def checkpoints_by_the_committing_thread() -> Iterator[None]:
    """The server as it was before its checkpoint thread: SQLite's default."""
    start, backstop = WalCheckpointer.start, store_database.BACKSTOP_PAGES
    WalCheckpointer.start = lambda self: self  # type: ignore[method-assign]
    store_database.BACKSTOP_PAGES = SQLITE_DEFAULT_PAGES  # type: ignore[misc]
    try:
        yield
    finally:
        WalCheckpointer.start = start  # type: ignore[method-assign]
        store_database.BACKSTOP_PAGES = backstop  # type: ignore[misc]


def driver_token(harness: ServerHarness, qpu_id: str, name: str) -> str:
    """A new driver of the QPU; its access token."""
    from qpi.v1 import qpu_pb2, qpu_service_pb2, qpu_service_pb2_grpc

    stub = qpu_service_pb2_grpc.QpuServiceStub(harness.channel())
    created = stub.CreateDriver(
        qpu_service_pb2.CreateDriverRequest(
            driver=qpu_pb2.Driver(qpu_id=qpu_id, name=name, kind="mock", language="python")
        ),
        metadata=harness.auth(harness.admin_token),
    )
    return str(created.access_token)


def one_run(seconds: float) -> dict[str, Any]:
    """One server under `seconds` of saturation; its database calls and submits."""
    harness = ServerHarness(
        make_settings(
            Path(tempfile.mkdtemp(prefix="qpi-stalls-")),
            insecure=False,
            heartbeat_timeout=600.0,
            job_timeout=600.0,
            database_url="",
        )
    ).start()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    try:
        qpu_id, first_token = harness.register_qpu("bench", 4)
        # One driver record per process: a driver's token holds one stream at a time.
        driver_tokens = [first_token] + [
            driver_token(harness, qpu_id, f"zero{i}") for i in range(1, DRIVERS)
        ]
        tokens = [
            harness.create_user(f"s{i}@example.com", qpu_seconds=1e9)[1] for i in range(SUBMITTERS)
        ]
        drivers = [
            context.Process(
                target=zero_work_driver,
                args=(harness.grpc_target, harness.ca_pem, token, 4, stop),
                daemon=True,
            )
            for token in driver_tokens
        ]
        for driver in drivers:
            driver.start()
        time.sleep(3)  # the drivers' streams open
        calls: list[float] = []
        out = context.Queue()
        with timed_database_calls(calls):
            client = context.Process(
                target=submitters,
                args=(harness.grpc_target, harness.ca_pem, tokens, seconds, out),
            )
            client.start()
            latencies, refused = out.get(timeout=seconds + 120)
            client.join(30)
        return {"calls": calls, "submits": latencies, "refused": refused}
    finally:
        stop.set()
        harness.stop()


def row(label: str, runs: list[dict[str, Any]]) -> list[str]:
    calls = sorted(c for run in runs for c in run["calls"])
    submits = sorted(s for run in runs for s in run["submits"])
    return [
        label,
        f"{percentile(calls, 0.5):.2f} ms",
        f"{percentile(calls, 0.99):.2f} ms",
        f"{percentile(calls, 0.999):.1f} ms",
        f"{calls[-1]:.1f} ms",
        str(sum(c > 20 for c in calls)),
        f"{percentile(submits, 0.5):.1f} ms",
        f"{percentile(submits, 0.99):.1f} ms",
        " / ".join(str(len(run["submits"])) for run in runs),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    ours: list[dict[str, Any]] = []
    default: list[dict[str, Any]] = []
    for _ in range(args.rounds):  # interleaved: a machine's drift hits both ways alike
        ours.append(one_run(args.seconds))
        with checkpoints_by_the_committing_thread():
            default.append(one_run(args.seconds))
    table = markdown_table(
        [
            "checkpoints",
            "database call p50",
            "p99",
            "p99.9",
            "max",
            "calls > 20 ms",
            "submit p50",
            "submit p99",
            "submits answered per run",
        ],
        [
            row("by a thread of their own (the server)", ours),
            row("by the committing thread (SQLite's default)", default),
        ],
    )
    notes = (
        f"`bench/sqlite_stalls.py`: an in-process server (TLS, SQLite), {DRIVERS} zero-work "
        f"drivers × capacity 4, {SUBMITTERS} closed-loop submitters for {args.seconds:g} s "
        f"per run, {args.rounds} run(s) each way, interleaved. Load average "
        f"{load_average()}. Machine: {machine_speed()}."
    )
    print_section("### SQLite under saturation: WAL checkpoints", table, notes, args.markdown)


if __name__ == "__main__":
    main()
