"""Real `qpi serve` and `qpi-driver start` subprocesses for end-to-end tests.

Each process runs in its own session (process group) so that stopping it also stops
whatever it spawned (the driver's executor worker, for instance). Output goes to log files
under the test's tmp directory; `log_tail()` returns the end of a log for assertion messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from qpi.sdk import QPIClient
from qpi.sdk.models import Job

BIN = Path(sys.executable).parent
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "e2e-admin-password-1234"  # noqa: S105 - throwaway test credential
USER_PASSWORD = "e2e-user-password-1234"  # noqa: S105 - throwaway test credential


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessExited(RuntimeError):
    """A process under test exited while a test was waiting for it; never retried."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    """Polls `predicate` until it returns a truthy value; raises TimeoutError naming `what`.

    Exceptions from `predicate` count as "not yet", except ProcessExited, which propagates.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except ProcessExited:
            raise
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        else:
            if value:
                return value
        time.sleep(step)
    suffix = f" (last error: {last_error!r})" if last_error else ""
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s{suffix}")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def live_group_members(pgid: int) -> list[int]:
    """Pids of live processes in process group `pgid` (Linux /proc scan).

    `os.killpg(pgid, 0)` is not enough: an orphaned child killed with its group may stay a
    zombie until a (possibly absent) init reaps it, and zombies are no longer running.
    """
    return [pid for pid, (_, group) in _proc_table().items() if group == pgid]


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, pgid) of every live, non-zombie process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> list[int]:
    """Live descendants of `pid`, whatever process group they moved to."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in _proc_table().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live (non-zombie) process."""
    return pid in _proc_table()


def kill_pids(pids: list[int]) -> None:
    """SIGKILLs each pid's process group and the pid itself, ignoring the ones gone."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop_group(proc: subprocess.Popen[bytes] | None, grace: float) -> int | None:
    """SIGTERM the group, wait up to `grace`, then SIGKILL the group; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Children of the group (e.g. an executor worker) may outlive the leader.
    _kill_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    return proc.returncode


class ServeProcess:
    """`qpi serve` with TLS, fast timers and a fresh SQLite data directory."""

    def __init__(
        self, root: Path, *, extra_args: tuple[str, ...] = (), database_url: str = ""
    ) -> None:
        self.root = root
        self.database_url = database_url
        """Empty: a SQLite file in the data directory."""
        self.data_dir = root / "server"
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.extra_args = extra_args
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._clients: list[QPIClient] = []
        self.ca_pem = b""
        self.ca_fingerprint = ""

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [BIN / "qpi", "superuser", "upsert", ADMIN_EMAIL, ADMIN_PASSWORD]
            + ["--data-dir", str(self.data_dir), "--config-file", ""]
            + (["--database-url", self.database_url] if self.database_url else []),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self._launch()
        self._wait_ready(timeout)
        return self

    def _launch(self) -> None:
        args = [
            str(BIN / "qpi"),
            "serve",
            "--data-dir", str(self.data_dir),
            "--bind-host", "127.0.0.1",
            "--server-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port),
            "--config-file", "",
            "--heartbeat-interval", "0.5s",
            "--heartbeat-timeout", "3s",
            "--job-timeout", "5s",
            "--recovery-interval", "1s",
            *(("--database-url", self.database_url) if self.database_url else ()),
            *self.extra_args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("QPI_")}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ProcessExited(f"qpi serve exited with {self.proc.returncode}:\n{self.log()}")
            response = httpx.get(f"{self.http_url}/api/pub/server-info", timeout=2)
            return dict(response.json()) if response.status_code == 200 else None

        try:
            info = wait_until(ready, timeout, "qpi serve answering /api/pub/server-info")
        except Exception:
            self.stop()
            raise
        self.ca_fingerprint = str(info["ca_fingerprint"])
        self.ca_pem = httpx.get(f"{self.http_url}/api/pub/root-ca.pem", timeout=5).content

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL the process group; returns the server's exit code."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        code = _stop_group(self.proc, grace)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def restart(self, timeout: float = 60.0) -> None:
        """Starts the server again on the same ports and data directory."""
        self._launch()
        self._wait_ready(timeout)

    def log(self) -> str:
        return _tail(self.log_path)

    # -- SDK helpers ---------------------------------------------------------------------

    def client(self, api_token: str | None = None) -> QPIClient:
        client = QPIClient(self.grpc_target, api_token=api_token, tls=True, ca_pem=self.ca_pem)
        self._clients.append(client)
        return client

    def admin(self) -> QPIClient:
        client = self.client()
        client.login(ADMIN_EMAIL, ADMIN_PASSWORD, superuser=True)
        return client

    def create_qpu(self, name: str, num_qubits: int = 8) -> str:
        """Registers a QPU; returns its driver access token."""
        return str(self.admin().create_qpu(name, num_qubits=num_qubits).access_token)

    def create_user(self, email: str, qpu_seconds: float = 3600.0) -> str:
        """Creates a user with a balance; returns a fresh API token of theirs."""
        self.admin().create_user(email, USER_PASSWORD, qpu_seconds=qpu_seconds)
        session = self.client()
        session.login(email, USER_PASSWORD)
        return str(session.create_api_token("e2e").token)

    def user(self, api_token: str) -> QPIClient:
        return self.client(api_token)

    def qpu_status(self, name: str) -> str:
        return str(self.admin().get_qpu(name).status)

    def submit(self, api_token: str, qasm: str, *, qpu: str, shots: int = 1000) -> Job:
        return self.user(api_token).submit_job(circuits=[qasm], shots=shots, qpu_target=qpu)

    def wait(self, api_token: str, job_id: str, timeout: float = 60.0) -> Job:
        return self.user(api_token).wait(job_id, timeout=timeout)


class DriverProcess:
    """`qpi-driver start` pinned to a ServeProcess's CA, in its own process group."""

    def __init__(
        self,
        server: ServeProcess,
        token: str,
        root: Path,
        *,
        name: str,
        executor: str = "mock",
        fingerprint: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.server = server
        self.token = token
        self.name = name
        self.executor = executor
        self.fingerprint = fingerprint
        self.extra_args = extra_args
        self.data_dir = root / f"drv-{name}"
        self.ca_file = self.data_dir / "ca.pem"
        self.log_path = root / f"driver-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._orphans: list[int] = []

    def start(self) -> DriverProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(BIN / "qpi-driver"),
            "start",
            "--qpi-addr", self.server.http_url,
            "--ca-fingerprint", self.fingerprint or self.server.ca_fingerprint,
            "--name", self.name,
            "--executor", self.executor,
            "--data-dir", str(self.data_dir),
            "--ca-file", str(self.ca_file),
            "--no-save-raw-data",
            "--shutdown-grace", "2",
            *self.extra_args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("QPI_")}
        env["QPI_ACCESS_TOKEN"] = self.token
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return self

    def wait_connected(self, timeout: float = 60.0) -> DriverProcess:
        def online() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ProcessExited(f"qpi-driver exited with {self.proc.returncode}:\n{self.log()}")
            return self.server.qpu_status(self.name) == "online"

        try:
            wait_until(online, timeout, f"driver {self.name} online", step=0.3)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- driver log ---\n{self.log()}") from None
        return self

    def alive(self) -> bool:
        """Whether the daemon process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def descendants(self) -> list[int]:
        """Live processes started by the daemon (the executor worker leads its own group)."""
        return descendants(self.proc.pid) if self.proc is not None else []

    def kill(self, *, orphans: bool = True) -> list[int]:
        """SIGKILL the daemon's group (no chance to finish or report anything).

        The executor worker runs in a process group of its own, so a group kill does not
        reach it; with `orphans` it is killed too (as a machine crash would). Returns the
        pids the daemon had started, for callers that leave them alive and check on them.
        """
        started = self.descendants()
        self._orphans.extend(started)
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if orphans:
            kill_pids(started)
        self._close_log()
        return started

    def terminate(self, grace: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the group and anything it left; returns the exit code."""
        self._orphans.extend(self.descendants())
        code = _stop_group(self.proc, grace)
        kill_pids(self._orphans)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return _tail(self.log_path)
