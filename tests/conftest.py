"""Shared fixtures: a real in-process QPI server (SQLite by default; PostgreSQL when
QPI_TEST_DATABASE=postgres) and a Bell-state circuit."""

from __future__ import annotations

import logging
import signal
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


def _sigint_state() -> tuple[object, bool, bool]:
    """SIGINT's Python handler, and whether the kernel has it ignored or blocked for this
    thread (both are inherited by every process this worker starts afterwards)."""
    fields = dict(
        line.split(":", 1) for line in Path("/proc/thread-self/status").read_text().splitlines()
    )
    bit = 1 << (signal.SIGINT - 1)
    ignored = bool(int(fields["SigIgn"], 16) & bit)
    blocked = bool(int(fields["SigBlk"], 16) & bit)
    return signal.getsignal(signal.SIGINT), ignored, blocked


@pytest.fixture(autouse=True)
def _sigint_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Puts SIGINT back as it was if a test left it ignored, blocked or re-handled in this
    worker, and names that test in the warnings summary.

    Child processes inherit an ignored or blocked SIGINT: in one CI run a `qpi` demo and a
    published `qpi-driver` started later by the same xdist worker never saw their Ctrl-C
    (both waited out their timeouts), and no single test of theirs was at fault.
    """
    before = _sigint_state()
    yield
    after = _sigint_state()
    if after == before:
        return
    signal.signal(signal.SIGINT, before[0])  # type: ignore[arg-type]
    if after[2] and not before[2]:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    request.node.warn(
        pytest.PytestWarning(
            f"this test changed SIGINT (handler, ignored, blocked) {before} -> {after}; "
            "restored for the tests after it"
        )
    )


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Undoes what a test's in-process CLI run did to logging.

    `qpi serve`/`qpi-driver` commands run in-process install QPI's policy on the root
    logger: a handler on the test's captured stderr (closed when the test ends) and maybe
    DEBUG levels. Left behind, every later log line of the worker fails to print and dumps
    a stack trace instead, which slowed whole xdist workers to a crawl.
    """
    root, own = logging.getLogger(), logging.getLogger("qpi")
    before, root_level, own_level = set(root.handlers), root.level, own.level
    yield
    for handler in list(root.handlers):
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(root_level)
    own.setLevel(own_level)


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
