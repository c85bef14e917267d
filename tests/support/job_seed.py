"""Seeds many jobs straight into the job table (listing tests and benchmarks).

Going through the store's table rather than CreateJob makes 10^5 jobs a matter of seconds
and lets a test choose states, finish times and charges freely.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text

from qpi.server.store.database import create_db_engine
from qpi.server.store.tables import JobRow, QpuRow
from qpi.server.store.types import new_id

QASM = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'
STATES = ("pending", "running", "completed", "failed", "cancelled")
BASE = datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class SeededJob:
    """What was inserted for one job."""

    id: str
    user_id: str
    qpu_id: str
    state: str


def seed_jobs(
    database_url: str,
    owners: Sequence[str],
    qpus: Sequence[str],
    count: int,
    *,
    seed: int = 7,
    step: timedelta = timedelta(milliseconds=1234, microseconds=567),
    batch: int = 5000,
) -> list[SeededJob]:
    """Insert `count` jobs spread over `owners`, `qpus` and every state.

    Creation times grow by `step` (sub-millisecond parts included); terminal jobs get a
    finish time and most a charge; the rest have none.
    """
    rng = random.Random(seed)
    table = JobRow.__table__  # type: ignore[attr-defined]
    engine = create_db_engine(database_url)
    seeded: list[SeededJob] = []
    try:
        with engine.connect() as conn:
            # Jobs carry their QPU's name, as a submit stores it.
            names = dict(conn.execute(select(QpuRow.id, QpuRow.name)).tuples().all())
        rows = []
        for i in range(count):
            state = STATES[rng.randrange(len(STATES))]
            created = BASE + step * i
            terminal = state in ("completed", "failed", "cancelled")
            finished = created + timedelta(seconds=rng.uniform(0.01, 90)) if terminal else None
            qpu = qpus[i % len(qpus)]
            row = {
                "id": new_id(),
                "user_id": owners[i % len(owners)],
                "qpu_id": qpu,
                "qpu_name": names.get(qpu, ""),
                "request_id": None,
                "payload_json": json.dumps(
                    {
                        "circuits": [{"circuit": QASM}],
                        "shots": 100,
                        "meas_level": 2,
                        "meas_return": "single",
                        "qpu_target": qpu,
                    }
                ),
                "state": state,
                "result_json": '{"counts": {"1": 100}}' if state == "completed" else None,
                "error": "boom" if state == "failed" else None,
                "attempt": 1 if state != "pending" else 0,
                "charged_seconds": round(rng.choice([0, 0.5, 1.5, 2, 3.25]), 2)
                if terminal
                else 0.0,
                "estimated_seconds": 0.1,
                "created": created,
                "updated": finished or created,
                "started_at": created if state != "pending" else None,
                "finished_at": finished,
            }
            rows.append(row)
            seeded.append(SeededJob(row["id"], row["user_id"], qpu, state))
            if len(rows) >= batch:
                with engine.begin() as conn:
                    conn.execute(insert(table), rows)
                rows = []
        if rows:
            with engine.begin() as conn:
                conn.execute(insert(table), rows)
        if engine.dialect.name == "postgresql":
            # As autovacuum does after a bulk load: statistics for the planner, and the
            # visibility map that lets counts use index-only scans.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE jobs"))
    finally:
        engine.dispose()
    return seeded
