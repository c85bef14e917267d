"""Shared fixtures: a real in-process QPI server (SQLite by default; PostgreSQL when
QPI_TEST_DATABASE=postgres) and a Bell-state circuit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import ServerHarness, drop_postgres, make_settings

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


@pytest.fixture
def bell_qasm() -> str:
    return BELL_QASM2


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    """Builds servers with custom settings; stops them (and drops PG databases) after."""
    started: list[ServerHarness] = []

    def factory(**overrides: object) -> ServerHarness:
        settings = make_settings(tmp_path / f"srv{len(started)}", **overrides)
        harness = ServerHarness(settings).start()
        started.append(harness)
        return harness

    yield factory
    for harness in started:
        harness.stop()
        if harness.settings.database_url.startswith("postgresql"):
            drop_postgres(harness.settings.database_url)


@pytest.fixture
def qpi_server(server_factory: object) -> ServerHarness:
    """A running server with an admin; use .create_qpu() to attach a mini driver."""
    return server_factory()  # type: ignore[operator,no-any-return]
