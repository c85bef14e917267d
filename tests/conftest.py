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


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def pytest_configure(config: pytest.Config) -> None:
    """Tests send Ctrl-C (SIGINT) to the servers, drivers and demos they start, which
    inherit this process's SIGINT. A suite launched in the background of a
    non-interactive shell (`./.ci/run &`, nohup) starts with SIGINT ignored: its children
    then never saw their Ctrl-C, and whether a test passed depended on whether an earlier
    test in the same xdist worker had happened to install a handler. Start from Python's
    own handler."""
    del config
    _default_sigint()


@pytest.fixture(autouse=True)
def _sigint_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Puts SIGINT back to Python's handler after a test that changed it (e.g. an
    in-process CLI run whose event loop installed its own), so that every test's children
    inherit the same SIGINT; names the test when it left SIGINT ignored or blocked, which
    would make later tests' processes deaf to Ctrl-C."""
    yield
    handler, ignored, blocked = _sigint_state()
    if handler is signal.default_int_handler and not ignored and not blocked:
        return
    _default_sigint()
    if ignored or blocked:
        request.node.warn(
            pytest.PytestWarning(
                f"this test left SIGINT ignored ({ignored}) or blocked ({blocked}); "
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
