"""Scheduler cost against the size of the job table: 10^3, 10^5 and 10^6 jobs.

Seeds the table directly with bulk Core inserts (up to 10^5 pending jobs, the rest
completed, plus past bookings), then measures on the real repositories and services:

* the next-job decision (the dispatcher's snapshot + queue policy),
* a submit naming its QPU and an untargeted one (routing reads capped queue lengths),
* GetQpu (a QPU with its queue length),

and prints the query plans of the statements that must stay flat.

    .venv/bin/python bench/scheduler_scale.py [--database sqlite|postgres]
        [--sizes 1000 100000 1000000] [--markdown]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import load_average, markdown_table, summarize  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from qpi.server.domain import accounting  # noqa: E402
from qpi.server.domain.clock import SystemClock  # noqa: E402
from qpi.server.domain.jobs import CircuitSpec, JobLimits  # noqa: E402
from qpi.server.domain.policy import BookingFirstFifoPolicy  # noqa: E402
from qpi.server.services.events import EventBus  # noqa: E402
from qpi.server.services.job_service import JobService, SubmitRequest  # noqa: E402
from qpi.server.services.lease_service import LeaseService  # noqa: E402
from qpi.server.services.principal import Principal  # noqa: E402
from qpi.server.services.qpu_service import QpuService  # noqa: E402
from qpi.server.store import jobs as job_store  # noqa: E402
from qpi.server.store import qpus as qpu_store  # noqa: E402
from qpi.server.store.database import create_db_engine, migrate  # noqa: E402
from qpi.server.store.repositories import sql_repositories  # noqa: E402
from qpi.server.store.tables import JOBS, TIME_SLOTS  # noqa: E402

PENDING_MAX = 100_000
BATCH = 50_000
USERS = 50
BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)


class Table:
    """A database with one QPU, USERS owners and a growing job table."""

    def __init__(self, database: str) -> None:
        self.pg_url = ""
        if database == "postgres":
            from tests.support.harness import fresh_postgres_url

            self.pg_url = fresh_postgres_url()
            url = self.pg_url
        else:
            url = f"sqlite:///{tempfile.mkdtemp(prefix='qpi-scale-')}/qpi.db"
        self.engine: Engine = create_db_engine(url)
        migrate(self.engine)
        self.repos = sql_repositories(self.engine)
        clock, bus = SystemClock(), EventBus()
        self.qpus = QpuService(self.repos.qpus, clock, bus, "")
        qpu, _ = self.repos.qpus.insert_qpu(
            "bench", enabled=True, num_qubits=4, coupling_map=[], native_gates=[], driver=None
        )
        self.qpu_id = qpu.id
        self.owners = [
            self.repos.accounts.insert_user(f"u{i}@example.com", "", "x", 1e12).id
            for i in range(USERS)
        ]
        submitter = self.repos.accounts.insert_user("submit@example.com", "", "x", 1e12)
        self.who = Principal(submitter.id, submitter.email, False)
        self.jobs = JobService(
            self.repos.jobs,
            self.repos.accounts,
            self.qpus,
            clock,
            bus,
            JobLimits(10**6, 100, 10**7),
            lambda sources: 2,
            accounting.ShotTimes(0.0),
            max_pending_per_user=1_000,
        )
        self.leases = LeaseService(self.repos.leases, clock, bus, 600.0, 10**7)
        self.policy = BookingFirstFifoPolicy()
        self.rows = 0
        self.pending = 0
        self._ids = itertools.count()
        self._base = datetime.now(UTC) - timedelta(days=30)
        self._seed_past_slots()
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_owners (k INTEGER PRIMARY KEY, id TEXT)"))
            conn.execute(
                text("INSERT INTO bench_owners (k, id) VALUES (:k, :id)"),
                [{"k": k, "id": owner} for k, owner in enumerate(self.owners)],
            )

    def _seed_past_slots(self) -> None:
        # A year of finished bookings: dispatch must not read them.
        rows = [
            {
                "id": f"s{i:014d}",
                "user_id": self.owners[i % USERS],
                "qpu_id": self.qpu_id,
                "start_time": self._base - timedelta(hours=2 * i + 1),
                "end_time": self._base - timedelta(hours=2 * i),
                "created": self._base,
            }
            for i in range(2_000)
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(TIME_SLOTS), rows)

    def grow_to(self, total: int) -> float:
        """Adds jobs until the table holds `total`: pending ones first (up to
        PENDING_MAX), then completed ones. Returns the seconds it took.

        Rows are generated inside the database (one INSERT … SELECT over a number series
        per batch): building 10^6 rows in Python would take minutes on a loaded machine.
        """
        t0 = time.perf_counter()
        while self.rows < total:
            count = min(BATCH, total - self.rows)
            pending = max(0, min(count, PENDING_MAX - self.pending))
            if pending:
                self._generate(self.rows, self.rows + pending, "pending")
            if count > pending:
                self._generate(self.rows + pending, self.rows + count, "completed")
            self.pending += pending
            self.rows += count
        if self.pg_url:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        return time.perf_counter() - t0

    def _generate(self, first: int, end: int, state: str) -> None:
        """Inserts jobs numbered [first, end) in `state`, created one second apart."""
        pending = state == "pending"
        # Literals from the two constant states; every other value is bound.
        literal = {
            "state": "'pending'" if pending else "'completed'",
            "result": "NULL" if pending else "'{}'",
            "attempt": "0" if pending else "1",
        }
        if self.pg_url:
            number = "generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i"
            created = "(CAST(:base AS timestamp) + i * interval '1 second')"
            job_id = "'j' || lpad(i::text, 14, '0')"
            source = f"FROM {number}"
            prefix = ""
        else:
            created = "strftime('%Y-%m-%d %H:%M:%f', :base, '+' || i || ' seconds')"
            job_id = "printf('j%014d', i)"
            source = "FROM n"
            prefix = "WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n "
            prefix += "WHERE i < :last) "
        done = "NULL" if pending else created
        columns = (
            "id, user_id, qpu_id, payload_json, state, result_json, attempt, charged_seconds, "
            "estimated_seconds, created, updated, started_at, finished_at"
        )
        values = (
            f"{job_id}, (SELECT id FROM bench_owners WHERE k = i % {USERS}), :qpu, '{{}}', "  # noqa: S608
            f"{literal['state']}, {literal['result']}, {literal['attempt']}, 0, 0, "
            f"{created}, {created}, {done}, {done}"
        )
        sql = f"{prefix}INSERT INTO jobs ({columns}) SELECT {values} {source}"  # noqa: S608
        base = self._base.replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(
                text(sql),  # built from constants only; values are bound
                {
                    "first": first,
                    "last": end - 1,
                    "qpu": self.qpu_id,
                    "base": base if self.pg_url else base.isoformat(sep=" "),
                },
            )

    def close(self) -> None:
        self.engine.dispose()
        if self.pg_url:
            from tests.support.harness import drop_postgres

            drop_postgres(self.pg_url)


def timed(fn: Callable[[], object], count: int) -> list[float]:
    for _ in range(5):  # warm caches and connections
        fn()
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def measure(table: Table, samples: int) -> dict[str, list[float]]:
    """Latency samples (ms) of each scheduler-facing operation at the current size."""

    def decide() -> None:
        snapshot, _ = table.leases.snapshot(table.qpu_id)
        table.policy.decide(snapshot, 0.0)

    def submit(qpu: str) -> Callable[[], object]:
        request = SubmitRequest([CircuitSpec(BELL)], 100, 2, "single", qpu=qpu)
        prepared = table.jobs.prepare(request)
        return lambda: table.jobs.submit(table.who, request, prepared)

    def old_count() -> None:
        # What submit and GetQpu ran before: an exact count over the whole queue.
        with table.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT count(*) FROM jobs WHERE qpu_id = :qpu "
                    "AND state IN ('pending', 'running')"
                ),
                {"qpu": table.qpu_id},
            ).scalar()

    return {
        "before: exact queue count(*)": timed(old_count, max(10, samples // 5)),
        "next-job decision (snapshot + policy)": timed(decide, samples),
        "submit naming its QPU": timed(submit("bench"), samples),
        "untargeted submit (routing)": timed(submit(""), samples),
        "GetQpu (queue length)": timed(lambda: table.qpus.get("bench"), samples),
    }


def plans(table: Table) -> list[tuple[str, str]]:
    """EXPLAIN of the statements the scheduler runs per decision and per submit."""
    now = datetime.now(UTC).replace(tzinfo=None)
    statements: list[tuple[str, Any, dict[str, Any]]] = [
        ("oldest pending job of a QPU", job_store._OLDEST.statement, {"qpu_id": table.qpu_id}),
        (
            "a booker's oldest pending job",
            job_store._OLDEST.statement.where(JOBS.c.user_id == table.owners[0]),
            {"qpu_id": table.qpu_id},
        ),
        (
            "the QPU's flag with its current and future bookings",
            job_store._QPU_AND_SLOTS.statement,
            {"now": now, "qpu_id": table.qpu_id},
        ),
        (
            "a user's pending jobs, capped count",
            job_store._PENDING_OF.statement,
            {"user_id": table.owners[0], "cap": 1000},
        ),
        (
            "queue length, capped count",
            qpu_store._QUEUED,
            {"qpu_id": table.qpu_id, "state": "pending", "cap": qpu_store.QUEUE_LENGTH_CAP},
        ),
    ]
    out = []
    is_pg = table.engine.dialect.name == "postgresql"
    with table.engine.connect() as conn:
        for label, statement, values in statements:
            compiled = statement.compile(dialect=table.engine.dialect)
            params = compiled.construct_params(values)
            sql = str(compiled)
            if is_pg:
                rows = conn.exec_driver_sql("EXPLAIN " + sql, params).all()
                plan = "\n".join(str(r[0]) for r in rows)
            else:
                positional = tuple(params[k] for k in compiled.positiontup or ())
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, positional).all()
                plan = "\n".join(str(r[-1]) for r in rows)
            out.append((label, plan))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--markdown", action="store_true")
    ns = parser.parse_args()
    table = Table(ns.database)
    results: list[tuple[int, int, float, dict[str, list[float]]]] = []
    try:
        for size in ns.sizes:
            seeded = table.grow_to(size)
            results.append((size, table.pending, seeded, measure(table, ns.samples)))
        explained = plans(table)
    finally:
        table.close()
    report(ns, results, explained)


def report(
    ns: argparse.Namespace,
    results: list[tuple[int, int, float, dict[str, list[float]]]],
    explained: list[tuple[str, str]],
) -> None:
    labels = list(results[0][3])
    headers = ["jobs in table (pending)"] + [f"{label} p50 / p99" for label in labels]
    rows = []
    for size, pending, _, samples in results:
        cells = [f"{size:,} ({pending:,})"]
        for label in labels:
            stats = summarize(samples[label])
            cells.append(f"{stats.p50:.2f} / {stats.p99:.2f} ms")
        rows.append(cells)
    first = {label: statistics.median(results[0][3][label]) for label in labels}
    last = {label: statistics.median(results[-1][3][label]) for label in labels}
    growth = ", ".join(f"{label} {last[label] / first[label]:.2f}×" for label in labels)
    if ns.markdown:
        print(f"### Scheduler cost against table size ({ns.database})\n")
        print(
            f"`bench/scheduler_scale.py --database {ns.database}`: jobs seeded with bulk Core "
            f"inserts (at most {PENDING_MAX:,} pending, the rest completed, 2,000 past "
            f"bookings), measured in-process on the repositories (no gRPC, so no floor: the "
            f"ratio that matters is largest over smallest table). Load average "
            f"{load_average()}.\n"
        )
        print(markdown_table(headers, rows))
        print(f"\nMedian at {results[-1][0]:,} jobs over {results[0][0]:,}: {growth}.\n")
        print(f"Query plans ({ns.database}, at {results[-1][0]:,} jobs):\n")
        for label, plan in explained:
            print(f"- {label}:\n\n```\n{plan}\n```\n")
        return
    print(f"database={ns.database} load average {load_average()}")
    for size, pending, seeded, samples in results:
        print(f"  {size:,} jobs ({pending:,} pending), seeded in {seeded:.1f} s")
        for label in labels:
            stats = summarize(samples[label])
            print(f"    {label}: p50 {stats.p50:.2f} ms, p99 {stats.p99:.2f} ms")
    print(f"  growth: {growth}")
    for label, plan in explained:
        print(f"  plan, {label}:\n    " + plan.replace("\n", "\n    "))


if __name__ == "__main__":
    main()
