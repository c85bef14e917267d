"""Server hot path: submit → assignment pushed to the driver → result stored → watcher told.

The driver does no work (it answers with a fixed result), so the numbers are the server's
own overhead: gRPC, persistence and the push dispatcher. Prints medians and p95 over
sequential jobs, and the throughput of concurrent submitters.

    .venv/bin/python bench/dispatch_latency.py [--jobs 300] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qpi.v1 import driver_service_pb2 as dpb  # noqa: E402
from qpi.v1 import driver_service_pb2_grpc, job_pb2, job_service_pb2, job_service_pb2_grpc  # noqa: E402
from tests.support.harness import ServerHarness, drop_postgres, make_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    grpc_floor,
    load_average,
    markdown_table,
    stats_row,
    summarize,
)

QASM = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'
RESULT = json.dumps(
    {"shots": 1, "success": True, "circuit_results": [{"counts": {"0": 0, "1": 1}, "shots": 1}]}
)


class InstantDriver:
    """Answers every assignment immediately; records when each assignment arrived."""

    def __init__(
        self,
        target: str,
        token: str,
        capacity: int,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.arrivals: dict[str, float] = {}
        self._out: queue.Queue[dpb.ConnectRequest | None] = queue.Queue()
        self._ready = threading.Event()
        channel = (
            grpc.secure_channel(target, credentials)
            if credentials
            else grpc.insecure_channel(target)
        )
        stub = driver_service_pb2_grpc.DriverServiceStub(channel)
        self._call = stub.Connect(
            self._requests(capacity), metadata=[("authorization", f"Bearer {token}")]
        )
        threading.Thread(target=self._loop, daemon=True).start()
        assert self._ready.wait(10)

    def _requests(self, capacity: int):  # type: ignore[no-untyped-def]
        yield dpb.ConnectRequest(
            hello=dpb.DriverHello(name="bench", capacity=capacity, executes_jobs=True)
        )
        while (item := self._out.get()) is not None:
            yield item

    def _loop(self) -> None:
        try:
            self._serve()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:  # cancelled: the bench is done
                raise

    def _serve(self) -> None:
        for message in self._call:
            if message.WhichOneof("message") == "welcome":
                self._ready.set()
            elif message.WhichOneof("message") == "job_assignment":
                a = message.job_assignment
                self.arrivals[a.job_id] = time.perf_counter()
                self._out.put(
                    dpb.ConnectRequest(
                        job_result=dpb.JobResult(
                            job_id=a.job_id,
                            attempt=a.attempt,
                            result_json=RESULT,
                            execution_seconds=0.001,
                        )
                    )
                )

    def close(self) -> None:
        self._out.put(None)
        self._call.cancel()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = args.database
    settings = make_settings(
        Path(tempfile.mkdtemp()) / "bench", heartbeat_timeout=600.0, job_timeout=600.0
    )
    server = ServerHarness(settings).start()
    try:
        _, driver_token = server.register_qpu("bench")
        _, user = server.create_user("bench@example.com", qpu_seconds=1e9)
        driver = InstantDriver(server.grpc_target, driver_token, capacity=1)
        stub = job_service_pb2_grpc.JobServiceStub(server.channel())
        md = server.auth(user)
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=QASM)], shots=1)
        push, total = [], []
        for _ in range(args.jobs):
            t0 = time.perf_counter()
            job = stub.CreateJob(
                job_service_pb2.CreateJobRequest(payload=payload, qpu="bench"), metadata=md
            ).job
            for update in stub.WatchJob(job_service_pb2.WatchJobRequest(id=job.id), metadata=md):
                if update.job.state == job_pb2.Job.STATE_COMPLETED:
                    break
            t1 = time.perf_counter()
            push.append((driver.arrivals[job.id] - t0) * 1e3)
            total.append((t1 - t0) * 1e3)
        floor = grpc_floor(server.channel())
        if not args.markdown:
            print(f"database={args.database} sequential jobs={args.jobs}")
        for label, values in (
            ("submit→assignment at driver", push),
            ("submit→completed seen by WatchJob", total),
        ):
            median, p95 = statistics.median(values), pct(values, 0.95)
            if not args.markdown:
                print(f"  {label}: median {median:.2f} ms, p95 {p95:.2f} ms")

        def burst(_: int) -> None:
            for _ in range(args.jobs // 10):
                stub.CreateJob(
                    job_service_pb2.CreateJobRequest(payload=payload, qpu="bench"), metadata=md
                )

        before = len(driver.arrivals)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(burst, range(10)))
        expected = before + (args.jobs // 10) * 10
        while len(driver.arrivals) < expected:
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        rate = (expected - before) / elapsed
        driver.close()
        if args.markdown:
            print(f"### Push dispatch, in-process server ({args.database})\n")
            print(
                f"`bench/dispatch_latency.py`: {args.jobs} sequential jobs through an "
                f"in-process server (plaintext gRPC) and a zero-work capacity-1 driver; then 10 "
                f"concurrent submitters: {rate:.0f} jobs/s end to end. Load average "
                f"{load_average()}.\n"
            )
            rows = [stats_row("floor: gRPC health Check", floor, floor)]
            rows += [
                stats_row("submit→assignment at driver", summarize(push), floor),
                stats_row("submit→completed seen by WatchJob", summarize(total), floor),
            ]
            print(markdown_table(["what", "p50", "p99", "× floor"], rows))
        else:
            print(f"  10 concurrent submitters, capacity-1 driver: {rate:.0f} jobs/s end to end")
    finally:
        server.stop()
        if server.settings.database_url.startswith("postgresql"):
            drop_postgres(server.settings.database_url)


if __name__ == "__main__":
    main()
