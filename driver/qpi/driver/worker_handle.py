"""Daemon-side control of the worker process (start, submit, kill, crash detection).

Nothing here blocks the event loop: messages to the worker are written by one sender
thread (in order; a large payload may fill the pipe), and processes are reaped by threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    stopped: bool = False
    """The job ended on a stop request ("stop_job"); it has no outcome to report."""


class WorkerHandle:
    """One worker process and the pipe to it, integrated with the asyncio loop.

    Args:
        config: Worker configuration.
        on_result: Called on the loop for each finished (or stopped) job.
        on_exit: Called on the loop with the exit code when the process dies unexpectedly.

    Attributes:
        starts: Worker processes started so far (1 while the first one lives).
        stops_cleanly: The executor ends a job on `stop_job` without being killed.
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
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qpi-worker-pipe")
        self.starts = 0
        self.stops_cleanly = False

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
        self.starts += 1
        info = await self._ready
        self.stops_cleanly = bool(info.get("stops_cleanly"))
        log.info(
            "worker process %s ready (start #%d, warm-up %.2f s)",
            self.pid,
            self.starts,
            float(info.get("warm_up_seconds") or 0.0),
        )
        return info

    def submit(self, job_id: str, attempt: int, payload: JobPayload) -> None:
        """Sends one job to the (idle) worker."""
        self._send(("job", job_id, attempt, payload))

    def stop_job(self, job_id: str, attempt: int) -> None:
        """Asks the worker to stop that job at its next check point (see stops_cleanly)."""
        self._send(("stop_job", job_id, attempt))

    def _send(self, message: tuple[Any, ...] | None) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("worker is not running")
        self._sender.submit(_send_quietly, conn, message)

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
        elif kind == "stopped":
            job_id, attempt, seconds = message[1:]
            self._on_result(WorkerResult(job_id, attempt, None, None, seconds, stopped=True))
        elif kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message[1])
        elif kind == "init_error" and self._ready is not None and not self._ready.done():
            self._expected_exit = True
            self._ready.set_exception(WorkerStartError(message[1]))

    def _handle_death(self) -> None:
        self._detach()
        assert self._loop is not None
        # The exit code needs a join, which must not block the loop.
        self._loop.create_task(self._after_death(self._process))

    async def _after_death(self, process: Any) -> None:
        if process is not None:
            await asyncio.to_thread(process.join, 1.0)
        if process is not self._process:
            return  # killed or replaced meanwhile
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
        # Reaped by a thread: kill() is called on the event loop.
        threading.Thread(target=process.join, args=(5.0,), daemon=True).start()
        self._process = None

    async def stop(self, timeout: float = 2.0) -> None:
        """Asks the worker to exit after its current job, then kills what is left."""
        self._expected_exit = True
        if self._conn is not None:
            with contextlib.suppress(RuntimeError):
                self._send(None)
        process = self._process
        if process is not None:
            await asyncio.to_thread(process.join, timeout)
        self.kill()
        self._sender.shutdown(wait=False)


def _send_quietly(conn: Connection, message: tuple[Any, ...] | None) -> None:
    """Writes one message; a dead worker is reported by EOF on the reading side instead."""
    try:
        conn.send(message)
    except (OSError, ValueError) as exc:
        log.debug("message to the worker not delivered: %s", exc)
