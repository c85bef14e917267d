"""REST hot path: one page of the jobs collection, as the dashboard asks for it.

Compares a page the server answers directly (`sort=-created`, optional status/QPU
equality filters go to ListJobs with offset and limit) with the generic path that fetches
every visible job and filters in the gateway (forced here with a no-op `id != ''`).
Prints medians over repeated requests and their ratio.

    .venv/bin/python bench/gateway_job_pages.py [--jobs 2000] [--repeat 30]
        [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import grpc_floor, load_average, markdown_table  # noqa: E402

from tests.support.harness import ServerHarness, drop_postgres, make_settings  # noqa: E402

QASM = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'


def _median_ms(
    http: httpx.Client, params: dict[str, str], headers: dict[str, str], n: int
) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        resp = http.get("/api/collections/quantum_jobs/records", params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = args.database
    with tempfile.TemporaryDirectory() as tmp:
        # One user parks every job: lift the per-user pending limit above the page set.
        settings = make_settings(Path(tmp) / "srv", max_pending_per_user=args.jobs + 1)
        server = ServerHarness(settings).start()
        try:
            server.register_qpu("parked")  # no driver: jobs stay pending
            _, token = server.create_user("bench@example.com", qpu_seconds=1e9)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: server.submit(token, QASM, qpu="parked"), range(args.jobs)))
            headers = {"X-API-Token": token}
            with httpx.Client(base_url=server.http_url, timeout=60) as http:
                page = {"sort": "-created", "perPage": "30"}
                pushed = _median_ms(http, page, headers, args.repeat)
                scanned = _median_ms(http, {**page, "filter": "id != ''"}, headers, args.repeat)
            floor = grpc_floor(server.channel())
            if args.markdown:
                print(f"### REST job pages ({args.database})\n")
                print(
                    f"`bench/gateway_job_pages.py`: `GET /api/collections/jobs/records`, a "
                    f"page of 30 among {args.jobs} jobs. Floor (gRPC health Check, same "
                    f"server) {floor.p50:.2f} ms; load average {load_average()}.\n"
                )
                print(
                    markdown_table(
                        ["what", "p50", "× floor"],
                        [
                            ["page answered by ListJobs", f"{pushed:.1f} ms",
                             f"{pushed / floor.p50:.1f}×"],
                            ["filter the database cannot answer (fetch-all)",
                             f"{scanned:.1f} ms", f"{scanned / floor.p50:.1f}×"],
                        ],
                    )
                )  # fmt: skip
                return
            print(f"jobs collection page of 30 out of {args.jobs} jobs ({args.database}):")
            print(f"  answered by ListJobs      median {pushed:7.1f} ms")
            print(f"  fetch-all + filter        median {scanned:7.1f} ms")
            print(f"  ratio                     {scanned / pushed:7.1f}x")
        finally:
            server.stop()
            if args.database == "postgres":
                drop_postgres(settings.database_url)


if __name__ == "__main__":
    main()
