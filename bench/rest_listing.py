"""REST listings at scale: one page of 30 among 10^5 jobs for every sort and filter
kind, and a page of every other collection among 10^4 records of each.

Starts a real ``qpi serve`` process (as a lab runs it: the client here does not share the
server's interpreter), seeds the jobs straight into its database (every state, finish
times, charges; one user owns them all) and the other records likewise, then times the
collection routes (and the bare ``/api/jobs``, ``/api/tokens``, ``/api/qpus``) as that user
and as the administrator, each against the floor of the same run (a bare gRPC health Check
over TLS to the same server).

    .venv/bin/python bench/rest_listing.py [--jobs 100000] [--others 10000] [--repeat 40]
        [--database sqlite|postgres] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    KeepAliveHttp,
    grpc_floor,
    load_average,
    markdown_table,
    print_section,
    stats_row,
    summarize,
    timed_ms,
)
from qpi.server.store.database import create_db_engine  # noqa: E402
from qpi.server.store.tables import (  # noqa: E402
    ApiTokenRow,
    NotificationRow,
    TimeRequestRow,
    TimeSlotRow,
    UserRow,
)
from qpi.server.store.types import new_id  # noqa: E402
from tests.support.harness import drop_postgres, fresh_postgres_url  # noqa: E402
from tests.support.job_seed import BASE, seed_jobs  # noqa: E402
from tests.support.processes import ServeProcess  # noqa: E402

HOW_TO_READ = """\
How the listings work: every collection is filtered, sorted, paged and counted in SQL
(`qpi.server.store.listing`); no route fetches a whole table. Each job sort has an index
`(field, created, id)` with and without the owner in front (migration `0014_listing_sorts`),
so a page of any single-field sort is one index range. Counts stop at 10,000 (`COUNT_CAP`,
reported as 10,000 with `totalItemsCapped` beyond) when one index holds every column the
filter reads (about 0.6 ms on SQLite to count that far), and at 2,000 (`READ_COUNT_CAP`)
when each match costs a row read (e.g. a range on one field and a condition on another:
10,000 row reads took 8–9 ms); `skipTotal=1` saves the count. `~` and `!=` on states become
`IN`, `~` on QPU names a semi-join on the QPU table; `~` on free text (ids, dates) and
field-against-field conditions are evaluated on at most 2,000 index-ordered candidates
(`SCAN_BUDGET`), and only the page's rows are then read in full; any statement running
past 2 s is cancelled and refused as `INVALID_FILTER`. What remains is mostly the fixed
cost of a request (HTTP, FastAPI, the gateway's in-process call, about 2–3 ms) and, for
long pages, each record's conversions (the 200-row feed)."""

JOBS = "/api/collections/quantum_jobs/records"
MID = (BASE.replace(hour=20)).strftime("%Y-%m-%d %H:%M:%S.000Z")

# (label, who, path, params)
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("own jobs, newest first (dashboard)", "user", JOBS, {"sort": "-created"}),
    ("all jobs, newest first (admin)", "admin", JOBS, {"sort": "-created"}),
    ("page 100", "user", JOBS, {"sort": "-created", "page": "100"}),
    ("GET /api/jobs?limit=30", "user", "/api/jobs", {"limit": "30"}),
    # every sort, both directions for the nullable one
    *[
        (f"sort {sort}", "user", JOBS, {"sort": sort})
        for sort in (
            "created",
            "updated",
            "-finished_at",
            "finished_at",
            "-duration",
            "status",
            "qpu_target",
            "qpu_name",
            "id",
            "user_id",
        )
    ],
    ("sort -updated (admin)", "admin", JOBS, {"sort": "-updated"}),
    ("sort qpu_name,-created (two keys)", "user", JOBS, {"sort": "qpu_name,-created"}),
    # every filter kind
    ("status = 'completed'", "user", JOBS, {"filter": "status = 'completed'"}),
    ("status = 'pending' (admin)", "admin", JOBS, {"filter": "status = 'pending'"}),
    (
        "status != 'failed', sort -finished_at",
        "user",
        JOBS,
        {"filter": "status != 'failed'", "sort": "-finished_at"},
    ),
    ("created > date", "user", JOBS, {"filter": f"created > '{MID}'"}),
    ("created < @now, sort created", "user", JOBS, {"filter": "created < @now", "sort": "created"}),
    ("finished_at = '' (unset)", "user", JOBS, {"filter": "finished_at = ''"}),
    (
        "duration > 1 && finished_at != ''",
        "user",
        JOBS,
        {"filter": "duration > 1 && finished_at != ''"},
    ),
    ("duration > 99999 (matches nothing)", "user", JOBS, {"filter": "duration > 99999"}),
    (
        "status = 'x' || status = 'y' (nothing)",
        "user",
        JOBS,
        {"filter": "status = 'x' || status = 'y'"},
    ),
    ("qpu_target = id", "user", JOBS, {"filter": "qpu_target = '{qpu}'"}),
    ("status ~ 'comp' (states: IN)", "user", JOBS, {"filter": "status ~ 'comp'"}),
    ("qpu_name ~ 'idle' (QPU table)", "user", JOBS, {"filter": "qpu_name ~ 'idle'"}),
    ("id ~ 'zz' (free text, window)", "user", JOBS, {"filter": "id ~ 'zz'"}),
    ("id ~ '%a%b%c%d' (free text, nothing)", "user", JOBS, {"filter": "id ~ '%q%q%q%q%q'"}),
    ("updated != created (field vs field)", "user", JOBS, {"filter": "updated != created"}),
    ("status ~ 'comp', skipTotal", "user", JOBS, {"filter": "status ~ 'comp'", "skipTotal": "1"}),
]

# The other collections, seeded with OTHERS rows each (the caller's own ones included).
OTHERS = 10_000
COLLECTION_CASES: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "time_slots: upcoming (dashboard)",
        "user",
        "/api/collections/time_slots/records",
        {"filter": "end_time > @now", "sort": "start_time", "perPage": "50"},
    ),
    (
        "time_slots: -start_time",
        "admin",
        "/api/collections/time_slots/records",
        {"sort": "-start_time"},
    ),
    (
        "notifications: feed (dashboard)",
        "user",
        "/api/collections/notifications/records",
        {"sort": "-created", "perPage": "200"},
    ),
    (
        "notifications: title ~ (admin)",
        "admin",
        "/api/collections/notifications/records",
        {"filter": "title ~ 'note 9'"},
    ),
    (
        "qpu_time_requests: own, status = 'pending'",
        "user",
        "/api/collections/qpu_time_requests/records",
        {"filter": "status = 'pending'"},
    ),
    (
        "qpu_time_requests: all (admin)",
        "admin",
        "/api/collections/qpu_time_requests/records",
        {"sort": "-created"},
    ),
    (
        "users: email ~ (admin)",
        "admin",
        "/api/collections/users/records",
        {"filter": "email ~ 'user1'"},
    ),
    ("users: by email (admin)", "admin", "/api/collections/users/records", {"sort": "email"}),
    ("api_tokens: own", "user", "/api/collections/api_tokens/records", {}),
    (
        "api_tokens: all, -created (admin)",
        "admin",
        "/api/collections/api_tokens/records",
        {"sort": "-created"},
    ),
    ("GET /api/tokens", "user", "/api/tokens", {"limit": "30"}),
    ("notifications: one record", "user", "/api/collections/notifications/records/{note}", {}),
    ("qpus (public)", "user", "/api/collections/qpus/records", {"sort": "name"}),
    ("GET /api/qpus", "user", "/api/qpus", {}),
    ("drivers (admin)", "admin", "/api/collections/drivers/records", {"sort": "created"}),
]


def seed_collections(database_url: str, user_id: str, qpus: list[str], count: int) -> str:
    """`count` users, tokens, bookings, time requests and notifications, straight into the
    tables (1 in 10 of the tokens, bookings and requests belong to `user_id`); returns the
    id of the middle notification."""
    tables = {
        name: row.__table__  # type: ignore[attr-defined]
        for name, row in (
            ("users", UserRow),
            ("tokens", ApiTokenRow),
            ("slots", TimeSlotRow),
            ("requests", TimeRequestRow),
            ("notes", NotificationRow),
        )
    }
    now = datetime.now(UTC)
    users = [
        {
            "id": new_id(),
            "email": f"user{i}@example.com",
            "name": f"User {i}",
            "password_hash": "x",
            "is_superuser": False,
            "qpu_seconds": float(i),
            "created": now,
            "updated": now,
        }
        for i in range(count)
    ]
    owner = [user_id if i % 10 == 0 else users[i]["id"] for i in range(count)]
    rows = {
        "users": users,
        "tokens": [
            {
                "id": new_id(),
                "user_id": owner[i],
                "token_hash": f"{i:064x}",
                "prefix": "qpi_",
                "name": f"token {i}",
                "expires_at": None,
                "created": now - timedelta(seconds=i),
            }
            for i in range(count)
        ],
        "slots": [
            {
                "id": new_id(),
                "user_id": owner[i],
                "qpu_id": qpus[i % len(qpus)],
                "start_time": now + timedelta(hours=i - count // 2),
                "end_time": now + timedelta(hours=i - count // 2, minutes=30),
                "created": now,
            }
            for i in range(count)
        ],
        "requests": [
            {
                "id": new_id(),
                "user_id": owner[i],
                "seconds": 10.0,
                "state": ("pending", "approved", "rejected")[i % 3],
                "requested_reason": f"reason {i}",
                "rejection_reason": "",
                "handled_by": "",
                "created": now - timedelta(seconds=i),
            }
            for i in range(count)
        ],
        "notes": [
            {
                "id": new_id(),
                "title": f"note {i}",
                "description": "",
                "start_time": None,
                "end_time": None,
                "created": now - timedelta(seconds=i),
                "updated": now - timedelta(seconds=i),
            }
            for i in range(count)
        ],
    }
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            for name in ("users", "tokens", "slots", "requests", "notes"):
                for start in range(0, count, 5000):
                    conn.execute(insert(tables[name]), rows[name][start : start + 5000])
        if engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load, before the timings start: without
            # statistics the planner guesses a feed filter keeps 56 of 10,000 rows and
            # reads them all instead of walking the (created, id) index to 200 of them.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in tables.values():
                    conn.execute(text(f"VACUUM ANALYZE {table.name}"))
    finally:
        engine.dispose()
    return str(rows["notes"][count // 2]["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--others", type=int, default=OTHERS)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = fresh_postgres_url() if args.database == "postgres" else ""
        server = ServeProcess(Path(tmp), database_url=database_url).start()
        try:
            admin = server.admin()
            qpus = []
            for name in ("idle", "busy", "spare"):
                server.create_qpu(name, 2)
                qpus.append(str(admin.get_qpu(name).id))
            token = server.create_user("bench@example.com", qpu_seconds=1e9)
            (user_id,) = [u.id for u in admin.list_users() if u.email == "bench@example.com"]
            admin_token = str(admin.create_api_token("bench").token)
            url = database_url or f"sqlite:///{(server.data_dir / 'qpi.db').resolve()}"
            started = time.perf_counter()
            seed_jobs(url, [user_id], qpus, args.jobs)
            note = seed_collections(url, user_id, qpus, args.others)
            seeded_s = time.perf_counter() - started
            headers = {"user": {"X-API-Token": token}, "admin": {"X-API-Token": admin_token}}
            rows = []
            credentials = grpc.ssl_channel_credentials(server.ca_pem)
            with (
                grpc.secure_channel(server.grpc_target, credentials) as channel,
                KeepAliveHttp(server.http_url) as http,
            ):
                floor = grpc_floor(channel)
                for label, who, path, params in CASES + COLLECTION_CASES:
                    query = {
                        "perPage": "30",
                        **{k: v.replace("{qpu}", qpus[0]) for k, v in params.items()},
                    }
                    route = path.replace("{note}", note)

                    def call(
                        path: str = route, query: dict[str, str] = query, who: str = who
                    ) -> None:
                        http.get(path, query, headers[who])

                    for _ in range(3):
                        call()  # warm caches
                    rows.append(stats_row(label, summarize(timed_ms(call, args.repeat)), floor))
            title = (
                f"### REST listing: page of 30 among {args.jobs:,} jobs and "
                f"{args.others:,} of each other record ({args.database})"
            )
            table = markdown_table(["query", "p50", "p99", "× floor"], rows)
            notes = (
                f"Floor (gRPC health Check, TLS): p50 {floor.p50:.2f} ms, p99 {floor.p99:.2f} ms; "
                f"load average {load_average()}; {args.repeat} requests per row; "
                f"seeding took {seeded_s:.1f} s; the server is its own `qpi serve` process; "
                "the client is the standard library's `http.client` on one keep-alive "
                "connection (see `KeepAliveHttp`)."
                f"\n\n{HOW_TO_READ}"
            )
            print_section(title, table, notes, args.markdown)
        finally:
            server.stop()
            if database_url:
                drop_postgres(database_url)


if __name__ == "__main__":
    main()
