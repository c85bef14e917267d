"""REST listings at scale: one page of 30 among 10^5 jobs, by filter and sort.

Seeds the jobs straight into the store (every state, finish times, charges; one user owns
them all), then times ``GET /api/collections/quantum_jobs/records`` (and ``/api/jobs``)
as that user and as the administrator, each against the floor of the same run (a bare
gRPC health Check over TLS to the same server).

    .venv/bin/python bench/rest_listing.py [--jobs 100000] [--repeat 40]
        [--database sqlite|postgres] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    stats_row,
    summarize,
    timed_ms,
)
from tests.support.harness import ServerHarness, drop_postgres, make_settings  # noqa: E402
from tests.support.job_seed import BASE, seed_jobs  # noqa: E402

JOBS = "/api/collections/quantum_jobs/records"
MID = (BASE.replace(hour=20)).strftime("%Y-%m-%d %H:%M:%S.000Z")

# (label, who, path, params)
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("own jobs, newest first (dashboard)", "user", JOBS, {"sort": "-created"}),
    ("all jobs, newest first (admin)", "admin", JOBS, {"sort": "-created"}),
    ("oldest first", "user", JOBS, {"sort": "created"}),
    ("page 100", "user", JOBS, {"sort": "-created", "page": "100"}),
    ("status = 'completed'", "user", JOBS, {"filter": "status = 'completed'"}),
    ("status = 'pending' (admin)", "admin", JOBS, {"filter": "status = 'pending'"}),
    ("created > date", "user", JOBS, {"filter": f"created > '{MID}'"}),
    ("status ~ 'comp' (LIKE)", "user", JOBS, {"filter": "status ~ 'comp'"}),
    ("qpu_name ~ 'idle' (LIKE)", "user", JOBS, {"filter": "qpu_name ~ 'idle'"}),
    (
        "duration > 1 && finished_at != ''",
        "user",
        JOBS,
        {"filter": "duration > 1 && finished_at != ''"},
    ),
    ("sort -finished_at", "user", JOBS, {"sort": "-finished_at"}),
    ("sort -duration", "user", JOBS, {"sort": "-duration"}),
    ("status ~ 'comp', skipTotal", "user", JOBS, {"filter": "status ~ 'comp'", "skipTotal": "1"}),
    ("sort -finished_at, skipTotal", "user", JOBS, {"sort": "-finished_at", "skipTotal": "1"}),
    ("GET /api/jobs?limit=30", "user", "/api/jobs", {"limit": "30"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ["QPI_TEST_DATABASE"] = args.database
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "srv")
        server = ServerHarness(settings).start()
        try:
            qpus = [server.register_qpu(name, 2)[0] for name in ("idle", "busy", "spare")]
            user_id, token = server.create_user("bench@example.com", qpu_seconds=1e9)
            started = time.perf_counter()
            seed_jobs(settings.effective_database_url, [user_id], qpus, args.jobs)
            seeded_s = time.perf_counter() - started
            headers = {
                "user": {"X-API-Token": token},
                "admin": {"Authorization": server.admin_token},
            }
            rows = []
            with httpx.Client(base_url=server.http_url, timeout=120) as http:
                floor = grpc_floor(server.channel())
                for label, who, path, params in CASES:
                    query = {"perPage": "30", **params}

                    def call(
                        path: str = path, query: dict[str, str] = query, who: str = who
                    ) -> None:
                        resp = http.get(path, params=query, headers=headers[who])
                        resp.raise_for_status()

                    for _ in range(3):
                        call()  # warm caches
                    rows.append(stats_row(label, summarize(timed_ms(call, args.repeat)), floor))
            title = f"### REST listing: page of 30 among {args.jobs:,} jobs ({args.database})"
            table = markdown_table(["query", "p50", "p99", "× floor"], rows)
            notes = (
                f"Floor (gRPC health Check, TLS): p50 {floor.p50:.2f} ms, p99 {floor.p99:.2f} ms; "
                f"load average {load_average()}; {args.repeat} requests per row; "
                f"seeding took {seeded_s:.1f} s."
            )
            print_section(title, table, notes, args.markdown)
        finally:
            server.stop()
            if args.database == "postgres":
                drop_postgres(settings.database_url)


if __name__ == "__main__":
    main()
