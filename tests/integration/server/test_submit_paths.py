"""The way a submit is stored. On PostgreSQL, once the server has read the QPU a submit
names, the next submits to it are written from the event loop in one round trip, on the
server's own connections (store/loop_connections.py); the first submit, and every submit
on SQLite, goes through the database thread. The answers are the same either way."""

from __future__ import annotations

import psycopg

from qpi.server.store.loop_connections import APPLICATION_NAME
from qpi.v1 import job_pb2
from tests.support.harness import PG_ADMIN_URL, ServerHarness, selected_database_kind


def _loop_connections(database: str) -> int:
    """The server's event-loop connections to `database`, as PostgreSQL sees them."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, APPLICATION_NAME),
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_repeat_submits_to_a_qpu_are_stored_alike_whichever_way(
    qpi_server: ServerHarness, bell_qasm: str
) -> None:
    qpi_server.create_qpu("sim1")
    _, token = qpi_server.create_user("paths@example.com")
    first = qpi_server.submit(token, bell_qasm, qpu="sim1")
    more = [qpi_server.submit(token, bell_qasm, qpu="sim1") for _ in range(3)]
    for job in [first, *more]:
        assert job.qpu_id == first.qpu_id
        assert job.state in (job_pb2.Job.STATE_PENDING, job_pb2.Job.STATE_RUNNING)
        done = qpi_server.wait(token, job.id)
        assert (done.state, done.attempt) == (job_pb2.Job.STATE_COMPLETED, 1), done.error
    assert len({job.id for job in [first, *more]}) == 4
    if selected_database_kind() == "postgres":
        database = qpi_server.settings.database_url.rsplit("/", 1)[1]
        assert _loop_connections(database) >= 1  # the repeat submits took the loop's way
