"""Daemon-side control of the worker process (start, submit, kill, crash detection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qpi.driver.payload import JobPayload
from qpi.driver.worker import WorkerConfig, worker_main

log = logging.getLogger(__name__)


class WorkerStartError(RuntimeError):
    """The executor could not be constructed in the worker."""


@dataclass(frozen=True)
class WorkerResult:
    """A finished job as reported by the worker."""

    job_id: str
    attempt: int
    result_json: str | None
    error: str | None
    seconds: float


class WorkerHandle:
    """One worker process and the pipe to it, integrated with the asyncio loop.

    Args:
        config: Worker configuration.
        on_result: Called on the loop for each finished job.
        on_exit: Called on the loop with the exit code when the process dies unexpectedly.
    """

    def __init__(
        self,
        config: WorkerConfig,
        on_result: Callable[[WorkerResult], None],
        on_exit: Callable[[int | None], None],
    ) -> None:
        self._config = config
        self._on_result = on_result
        self._on_exit = on_exit
        # spawn: a fresh interpreter, so no grpc/asyncio state is inherited from the daemon.
        self._ctx = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expected_exit = False

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def is_stopped(self) -> bool:
        """Whether the worker process is stopped (SIGSTOP, tracing) right now.

        Read from /proc (Linux); elsewhere a stopped worker is not detected.
        """
        pid = self.pid
        if pid is None:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
        return state in ("T", "t")

    async def start(self) -> dict[str, Any]:
        """Starts the process and waits until the executor is ready.

        Returns:
            Executor capabilities (see `qpi.driver.capabilities.basic_capabilities`).

        Raises:
            WorkerStartError: If the executor failed to initialise or the process died.
        """
        self._loop = asyncio.get_running_loop()
        parent, child = self._ctx.Pipe(duplex=True)
        self._process = self._ctx.Process(
            target=worker_main, args=(child, self._config), name="QPI-Worker", daemon=True
        )
        self._expected_exit = False
        self._ready = self._loop.create_future()
        await asyncio.to_thread(self._process.start)
        # Closing our copy of the child's end makes the worker's death visible as EOF.
        child.close()
        self._conn = parent
        self._loop.add_reader(parent.fileno(), self._on_readable)
        return await self._ready

    def submit(self, job_id: str, attempt: int, payload: JobPayload) -> None:
        """Sends one job to the (idle) worker."""
        if self._conn is None:
            raise RuntimeError("worker is not running")
        self._conn.send(("job", job_id, attempt, payload))

    def _on_readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._dispatch(conn.recv())
        except (EOFError, OSError):
            self._handle_death()

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "result":
            self._on_result(WorkerResult(*message[1:]))
        elif kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message[1])
        elif kind == "init_error" and self._ready is not None and not self._ready.done():
            self._expected_exit = True
            self._ready.set_exception(WorkerStartError(message[1]))

    def _handle_death(self) -> None:
        self._detach()
        process = self._process
        if process is not None:
            process.join(timeout=1.0)
        code = process.exitcode if process is not None else None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(WorkerStartError(f"worker process exited with code {code}"))
            return
        if not self._expected_exit:
            log.error("worker process died with exit code %s", code)
            self._on_exit(code)

    def _detach(self) -> None:
        if self._conn is not None and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._conn.fileno())
            self._conn.close()
        self._conn = None

    def kill(self) -> None:
        """Kills the worker and its whole process group at once (no callbacks fire)."""
        self._expected_exit = True
        self._detach()
        process = self._process
        if process is None:
            return
        if process.pid is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                # The group may not exist yet if the child has not called setpgrp.
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        process.join(timeout=5.0)
        self._process = None

    async def stop(self, timeout: float = 2.0) -> None:
        """Asks the worker to exit after its current job, then kills what is left."""
        self._expected_exit = True
        if self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
        process = self._process
        if process is not None:
            await asyncio.to_thread(process.join, timeout)
        self.kill()
