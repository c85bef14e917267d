"""The same mock workload through the published `qpi-driver` over NNG and our gRPC driver.

One `qpi serve` process, two QPUs: one served by the unmodified published daemon (PyPI
0.4.2, its own venv, NNG compatibility transport), one by our `qpi-driver` (gRPC stream).
Both run the `mock` executor. For each, in the same run:

* latency: sequential jobs, submit → result seen by the SDK's WatchJob stream;
* throughput: a burst of jobs submitted at once, jobs/s until the last one finished.

Prints medians and p99, and the NNG/gRPC ratios. Both paths share the server, the
database and the executor library (qiskit BasicSimulator), so the ratio isolates transport
and daemon overhead.

    .venv/bin/python bench/nng_vs_grpc.py [--jobs 40] [--burst 60] [--shots 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grpc  # noqa: E402
from _common import grpc_floor, load_average, markdown_table  # noqa: E402

from tests.e2e.nng.conftest import BELL, NngServer  # noqa: E402
from tests.e2e.nng.peers import install_published_driver  # noqa: E402
from tests.support.processes import DriverProcess  # noqa: E402


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latencies(submit_and_wait: Callable[[], None], jobs: int) -> list[float]:
    submit_and_wait()  # warm-up: first-job imports and caches
    samples = []
    for _ in range(jobs):
        start = time.perf_counter()
        submit_and_wait()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _throughput(submit: Callable[[], str], wait: Callable[[str], None], burst: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: submit(), range(burst)))
        list(pool.map(wait, ids))
    return burst / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="sequential jobs per transport")
    parser.add_argument("--burst", type=int, default=60, help="jobs per throughput burst")
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    print("installing/locating the published qpi-driver 0.4.2 ...", file=sys.stderr, flush=True)
    published = install_published_driver("0.4.2")
    with tempfile.TemporaryDirectory(prefix="qpi-bench-nng-") as tmp:
        root = Path(tmp)
        server = NngServer(root).start()
        try:
            nng = server.register("bench-nng")
            grpc_token = server.process.create_qpu("bench-grpc", num_qubits=4)
            daemon = server.driver(published, "0.4.2", nng).start()
            server.wait_online(nng, daemon)
            native = DriverProcess(
                server.process,
                grpc_token,
                root,
                name="bench-grpc",
                extra_args=("--job-timeout", "300"),  # a loaded machine's cold first job
            )
            native.start().wait_connected(120)
            user = server.user_token("bench@example.com", qpu_seconds=1e9)
            client = server.process.user(user)

            def runner(qpu: str) -> tuple[Callable[[], str], Callable[[str], None]]:
                def submit() -> str:
                    job = client.submit_job(circuits=[BELL], shots=args.shots, qpu_target=qpu)
                    return str(job.id)

                def wait(job_id: str) -> None:
                    done = client.wait(job_id, timeout=300)
                    assert done.state == "completed", (done.state, done.error)

                return submit, wait

            rows = {}
            for label, qpu in (
                ("NNG (published 0.4.2)", nng.qpu_id),
                ("gRPC (qpi-driver)", "bench-grpc"),
            ):
                submit, wait = runner(qpu)
                lat = _latencies(lambda s=submit, w=wait: w(s()), args.jobs)  # type: ignore[misc]
                rate = _throughput(submit, wait, args.burst)
                rows[label] = (statistics.median(lat), _p(lat, 0.99), rate)
            native.terminate()
            channel = grpc.secure_channel(
                server.process.grpc_target, grpc.ssl_channel_credentials(server.process.ca_pem)
            )
            floor = grpc_floor(channel)
            channel.close()
        finally:
            server.stop()

    if args.markdown:
        print("### NNG compatibility transport against gRPC\n")
        print(
            f"`bench/nng_vs_grpc.py`: mock executor, {args.shots}-shot Bell jobs through the "
            f"SDK (submit + wait), {args.jobs} sequential, then a burst of {args.burst}. "
            f"Floor {floor.p50:.2f} ms; load average {load_average()}.\n"
        )
        table = [
            [label, f"{m:.1f} ms", f"{p99:.1f} ms", f"{m / floor.p50:.0f}×", f"{rate:.1f}"]
            for label, (m, p99, rate) in rows.items()
        ]
        print(markdown_table(["transport", "p50", "p99", "× floor", "jobs/s"], table))
        return

    print(
        f"\nmock executor, {args.shots}-shot Bell jobs; "
        f"{args.jobs} sequential, burst of {args.burst}"
    )
    print(f"{'transport':<24}{'median ms':>12}{'p99 ms':>12}{'jobs/s':>10}")
    for label, (median, p99, rate) in rows.items():
        print(f"{label:<24}{median:>12.1f}{p99:>12.1f}{rate:>10.1f}")
    (nm, np99, nr), (gm, gp99, gr) = rows.values()
    print(f"{'NNG / gRPC':<24}{nm / gm:>11.2f}x{np99 / gp99:>11.2f}x{nr / gr:>9.2f}x")


if __name__ == "__main__":
    main()
