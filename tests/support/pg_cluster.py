"""A throwaway PostgreSQL cluster a test can stop and start at will.

The shared cluster on 5432 must never be restarted by a test, so fault tests that take the
database away build their own with `initdb` on a free port in a temporary directory. The
server binaries refuse to run as root, so as root every command runs as `postgres`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support.processes import free_port

PG_BIN = Path(os.environ.get("QPI_PG_BIN", "/usr/lib/postgresql/15/bin"))
_OWNER = "postgres"


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", _OWNER, "--", *args] if os.geteuid() == 0 else args


class PgCluster:
    """`initdb` + `pg_ctl` on 127.0.0.1:<free port>, data in a private temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="qpi-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_OWNER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy/libpq URL of the cluster's `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        subprocess.run(_as_owner(list(args)), check=True, capture_output=True, timeout=timeout)

    def init(self) -> PgCluster:
        """Creates the cluster (trust auth, fsync off: the data is thrown away)."""
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        return self

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m <mode>`: fast ends every session at once, like an admin restart."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """Creates a database and returns its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        """Stops the cluster (immediately) and removes its files."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """The end of the cluster's log, for assertion messages."""
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
