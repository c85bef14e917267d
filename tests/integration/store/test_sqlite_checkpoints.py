"""SQLite WAL checkpoints made by a thread of their own, not by the committing thread."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qpi.server.store.database import create_db_engine, sqlite_path
from qpi.server.store.sqlite_checkpoints import (
    BACKSTOP_PAGES,
    JOURNAL_SIZE_LIMIT,
    WalCheckpointer,
)
from tests.support.harness import ServerHarness, make_settings, selected_database_kind
from tests.support.processes import wait_until


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'qpi.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)"))
        yield engine
    finally:
        engine.dispose()


def _write(engine: Engine, count: int) -> None:
    for index in range(count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (note) VALUES (:note)"), {"note": f"n{index}"})


def _rows_in_the_database_file(path: str, tmp_path: Path) -> int:
    """Rows of t found in the database file alone (a copy without its log)."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
        except sqlite3.OperationalError:  # the table itself is still only in the log
            return 0


def test_committed_writes_reach_the_database_file_without_a_commit_checkpointing(
    engine: Engine, tmp_path: Path
) -> None:
    path = sqlite_path(engine)
    assert path is not None
    _write(engine, 20)
    # Far below the backstop: no commit checkpointed, the rows are only in the log.
    assert _rows_in_the_database_file(path, tmp_path) == 0
    checkpoints = WalCheckpointer(path, interval=0.01).start()
    try:
        wait_until(
            lambda: checkpoints.last is not None and checkpoints.last[0] == checkpoints.last[1],
            10,
            "a checkpoint covering the whole log",
        )
        assert _rows_in_the_database_file(path, tmp_path) == 20
        with engine.connect() as conn:  # and the database reads the same through its log
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 20
    finally:
        checkpoints.stop()


def test_serving_connections_checkpoint_only_past_the_backstop(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == BACKSTOP_PAGES
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar_one() == (
            JOURNAL_SIZE_LIMIT
        )


def test_a_database_that_cannot_be_opened_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "later" / "qpi.db"  # its directory does not exist yet
    checkpoints = WalCheckpointer(str(path), interval=0.01)
    with caplog.at_level(logging.WARNING, logger="qpi.server.store.sqlite_checkpoints"):
        checkpoints.start()
        try:
            wait_until(lambda: "WAL checkpoint failed" in caplog.text, 10, "a warning")
            path.parent.mkdir()
            engine = create_db_engine(f"sqlite:///{path}")
            try:
                with engine.begin() as conn:
                    conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)"))
                _write(engine, 3)
                wait_until(
                    lambda: checkpoints.last is not None and checkpoints.last[1] > 0,
                    10,
                    "a checkpoint once the file exists",
                )
            finally:
                engine.dispose()
        finally:
            checkpoints.stop()
    # One warning, not one per round.
    assert caplog.text.count("WAL checkpoint failed") == 1


def test_the_checkpointer_never_creates_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "qpi.db"  # its directory exists, the file does not (yet)
    checkpoints = WalCheckpointer(str(path), interval=0.01).start()
    try:
        wait_until(lambda: checkpoints.rounds >= 20, 10, "twenty rounds")
        assert not path.exists()
        assert checkpoints.last is None
    finally:
        checkpoints.stop()


def test_stop_ends_the_thread(tmp_path: Path) -> None:
    checkpoints = WalCheckpointer(str(tmp_path / "qpi.db"), interval=0.01).start()
    checkpoints.stop()
    assert checkpoints._thread is not None  # noqa: SLF001 - the thread it started
    assert not checkpoints._thread.is_alive()  # noqa: SLF001


def test_the_server_checkpoints_its_sqlite_database_in_the_background(tmp_path: Path) -> None:
    harness = ServerHarness(make_settings(tmp_path)).start()
    try:
        checkpoints = harness.server.checkpoints
        assert (checkpoints is not None) == (selected_database_kind() == "sqlite")
        if checkpoints is not None:
            harness.create_user("a@example.com")  # writes something to checkpoint
            wait_until(lambda: checkpoints.last is not None, 10, "a checkpoint")
    finally:
        harness.stop()
    if checkpoints is not None:
        assert checkpoints._thread is not None  # noqa: SLF001
        assert not checkpoints._thread.is_alive()  # noqa: SLF001
