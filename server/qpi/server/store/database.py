"""Engine creation and schema migration for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

from qpi.server.domain.errors import database_unavailable, transaction_conflict
from qpi.server.store.postgres_plans import keep_prepared_statements
from qpi.server.store.sqlite_checkpoints import BACKSTOP_PAGES, JOURNAL_SIZE_LIMIT
from qpi.server.store.transactions import begin_before_other_statements

logger = logging.getLogger(__name__)
# Alembic announces every plugin it loads at INFO; only migrations themselves matter.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Uses the psycopg 3 driver for plain `postgresql://` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled PostgreSQL connection unused for longer is pinged before it is handed out."""


def create_db_engine(url: str, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    """Creates an engine with the pragmas and pool settings each backend needs."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Up to 8 database threads, each holding at most one connection of each pool at a
    # time; the rest is headroom for work outside those threads. docs/deployment.md
    # counts these for max_connections.
    engine = _postgres_engine(url, ping_after_idle, pool_size=8, max_overflow=12)
    autocommit = _postgres_engine(
        url, ping_after_idle, pool_size=8, max_overflow=8, isolation_level="AUTOCOMMIT"
    )
    _AUTOCOMMIT[engine] = autocommit
    event.listen(engine, "engine_disposed", lambda _engine: autocommit.dispose())
    return engine


_AUTOCOMMIT: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
"""Each PostgreSQL engine's companion whose pooled connections stay in autocommit mode."""


def autocommit_engine(engine: Engine) -> Engine:
    """`engine` in autocommit mode: for PostgreSQL reads and write transactions that send
    their own BEGIN (:mod:`qpi.server.store.transactions`).

    An engine from :func:`create_db_engine` has a companion with a pool of its own, whose
    connections are put in autocommit mode once, when they connect. The same engine with
    an autocommit execution option (the fallback for other engines) switches a pooled
    connection into autocommit at every checkout and back at every return: about a tenth
    of a millisecond of Python per transaction, on the hottest paths (every submit, result
    and read). Disposing of `engine` disposes of its companion."""
    companion = _AUTOCOMMIT.get(engine)
    if companion is not None:
        return companion
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def sqlite_path(engine: Engine) -> str | None:
    """The file of a SQLite engine's database (None: not SQLite, or in memory)."""
    if not is_sqlite(engine):
        return None
    database = engine.url.database
    return database if database and database != ":memory:" else None


def _postgres_engine(url: str, ping_after_idle: float, **options: Any) -> Engine:
    engine = create_engine(url, **options)
    _ping_when_idle(engine, ping_after_idle)
    keep_prepared_statements(engine)
    begin_before_other_statements(engine)
    return engine


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Pings a pooled connection at checkout only if it sat unused for `after` seconds.

    ``pool_pre_ping`` pings on every checkout: a round trip for each of the three or four
    transactions of a job, a sixth of a job's round trips on PostgreSQL. A connection that
    sat in the pool may have been closed by a database restart, a failover or a firewall,
    and is checked (and silently replaced) as before. One used within the last `after`
    seconds is handed out as it is: if the server went away in that moment, its statement
    fails as DATABASE_UNAVAILABLE (retryable, like every request during the outage) and the
    lost connection leaves the pool.
    """

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after:
            return  # new, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (a new one).
            raise exc.DisconnectionError(str(error)) from error

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


# SQLite errors that mean "cannot reach the file right now" rather than a bad statement.
_SQLITE_OUTAGES = (
    "unable to open database",
    "database is locked",
    "disk i/o error",
    "database or disk is full",
    "readonly database",
)


def is_outage(error: BaseException) -> bool:
    """Whether `error` means the database is unreachable (so a retry may succeed).

    A lost or refused PostgreSQL connection (restart, failover, network), an exhausted
    connection pool, or a SQLite file that cannot be opened or stays locked beyond the busy
    timeout. Programming and constraint errors are not outages.
    """
    if isinstance(error, exc.TimeoutError):  # no pooled connection became free in time
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, psycopg.OperationalError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(marker in text for marker in _SQLITE_OUTAGES)
    return False


def is_transaction_conflict(error: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to settle a conflict with a concurrent
    one (SQLSTATE class 40: a deadlock, a serialization failure), so that it changed
    nothing and a retry may succeed."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        error = error.orig
    # By SQLSTATE: psycopg derives DeadlockDetected from OperationalError, not from its
    # class-40 TransactionRollback.
    return isinstance(error, psycopg.Error) and (error.sqlstate or "").startswith("40")


@contextmanager
def outages_as_unavailable() -> Iterator[None]:
    """Re-raises database outages as the domain's DATABASE_UNAVAILABLE error, and
    transactions the database aborted over a conflict as TRANSACTION_CONFLICT (both
    retryable)."""
    try:
        yield
    except Exception as error:
        if is_transaction_conflict(error):
            raise transaction_conflict() from error
        if is_outage(error):
            raise database_unavailable() from error
        raise


SQLITE_PAGE_SIZE = 2048
"""Page size of a new SQLite database (an existing file keeps the size it was made with).

Every commit appends each page it changed to the WAL, whole and checksummed, and a job's
three transactions change a leaf page in each of the jobs table's ~20 indexes: measured on
this schema, 2 KiB pages cost a job's lifecycle 25-30 % less SQLite time than the 4 KiB
default, and as little as 1 KiB pages once payloads exceed a kilobyte (which 1 KiB pages
would spill to overflow pages).
"""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during writes; the busy timeout absorbs short write
    # contention instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    # Takes effect only while the file is still empty, so it must precede the WAL switch.
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The server checkpoints the log in a thread of its own (store.sqlite_checkpoints);
    # a committing connection does so only past this backstop.
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    """An alembic configuration bound to `engine` without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Applies all pending migrations (the "auto-schema migration" at start-up)."""
    logger.info("applying database migrations (%s)", engine.dialect.name)
    command.upgrade(alembic_config(engine), "head")
