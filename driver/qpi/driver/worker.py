"""The worker process: owns the executor and runs one job at a time.

The daemon talks to it over a multiprocessing pipe (the same primitive that backs
`multiprocessing.Queue`), because a pipe exposes a file descriptor the asyncio loop can
watch directly: results reach the event loop without a helper thread or polling.

Messages, all plain tuples of builtins so pickling stays cheap:
    parent -> worker: ("job", job_id, attempt, JobPayload)
                      ("stop_job", job_id, attempt)  stop it at its next check point
                      None                  exit
    worker -> parent: ("ready", capabilities dict (see qpi.driver.capabilities) plus
                                "stops_cleanly" and "warm_up_seconds")
                      ("init_error", message)
                      ("result", job_id, attempt, result_json | None, error | None, seconds)
                      ("stopped", job_id, attempt, seconds)  after a "stop_job"

The executor is warmed up (`Executor.warm_up`) before "ready", so neither the first job's
timeout nor its bill includes imports and first-call caches. A reader thread receives the
messages, so a "stop_job" reaches the executor while `execute` runs on the main thread.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qpi.common.logs import configure_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs to build its executor (picklable).

    Attributes:
        executor: Registry name or "pkg.module:ClassName".
        options: Keyword options for the executor constructor.
        data_dir: Driver data directory.
        workdir: Working directory of the process (vendor tools write temp files to CWD).
        save_raw_data: Write each job's dataset as NetCDF after the result is sent.
        log_level: Logging level name.
    """

    executor: str
    options: dict[str, Any] = field(default_factory=dict)
    data_dir: Path = Path("bin/data")
    workdir: Path | None = None
    save_raw_data: bool = True
    log_level: str = "INFO"


def describe_error(exc: BaseException) -> str:
    """Formats an exception for the user: ValueError text verbatim, else "<Class>: <text>"."""
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


PARENT_CHECK_SECONDS = 0.2


def _exit_with_parent(parent: int) -> None:
    """Kills this worker's process group as soon as the daemon that started it is gone.

    The worker leads its own process group, so a SIGKILL of the daemon does not reach it;
    without this it would keep driving the instruments while a restarted daemon starts a
    new worker. A watcher thread notices the re-parenting within PARENT_CHECK_SECONDS.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="qpi-parent-watch", daemon=True).start()


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of the worker process.

    Args:
        conn: The worker's end of the pipe.
        config: Executor settings.
    """
    # Own process group: the daemon can kill the worker and anything it spawned (e.g. the
    # Q1ASM assembler) in one call, and a terminal Ctrl-C reaches only the daemon.
    os.setpgrp()
    _exit_with_parent(os.getppid())
    # The daemon's policy: QPI at the chosen level, other libraries at WARNING unless DEBUG.
    configure_logging(config.log_level, "%(asctime)s %(levelname)s [worker] %(name)s: %(message)s")
    if config.workdir is not None:
        config.workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(config.workdir)
    try:
        from qpi.driver.executors.registry import resolve_executor

        config.data_dir.mkdir(parents=True, exist_ok=True)
        executor = resolve_executor(config.executor)(data_dir=config.data_dir, **config.options)
        warm_up_seconds = _warm_up(executor, config)
    except Exception as exc:  # noqa: BLE001 - reported to the daemon, which decides to exit
        log.exception("executor %s failed to start", config.executor)
        conn.send(("init_error", describe_error(exc)))
        return
    info = executor.capabilities()
    info["stops_cleanly"] = bool(getattr(executor, "stops_cleanly", False))
    info["warm_up_seconds"] = warm_up_seconds
    log.info(
        "worker process %d ready (executor %s, warmed up in %.2f s)",
        os.getpid(),
        config.executor,
        warm_up_seconds,
    )
    conn.send(("ready", info))
    try:
        _serve(conn, executor, config)
    finally:
        try:
            executor.close()
        except Exception:  # noqa: BLE001 - closing must not mask the exit reason
            log.exception("executor close failed")


def _warm_up(executor: Any, config: WorkerConfig) -> float:
    """Runs the executor's warm-up (if it has one); returns the seconds it took."""
    started = time.perf_counter()
    warm_up = getattr(executor, "warm_up", None)
    if callable(warm_up):
        warm_up()
    if config.save_raw_data:
        # The first raw-data save would otherwise import the NetCDF stack while the next
        # job runs, slowing it down.
        importlib.import_module("h5netcdf")
    return time.perf_counter() - started


PENDING_SAVES = 8
"""Datasets that may wait for the disk; beyond this the next job waits instead of memory
growing without bound (the results themselves are never delayed)."""


class _RawDataSaver:
    """Writes datasets in a background thread, with a bounded backlog."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-data")
        self._slots = threading.BoundedSemaphore(PENDING_SAVES)

    def submit(self, dataset: Any, path: Path) -> None:
        """Queues a save; blocks while PENDING_SAVES are already queued."""
        if not self._slots.acquire(blocking=False):
            log.warning("raw data writes are behind the jobs; waiting for the disk")
            self._slots.acquire()
        future = self._pool.submit(_save_raw, dataset, path)
        future.add_done_callback(lambda _: self._slots.release())

    def close(self) -> None:
        """Finishes the queued writes."""
        self._pool.shutdown(wait=True)


def _serve(conn: Connection, executor: Any, config: WorkerConfig) -> None:
    # Raw data is written by a background thread so the next job rarely waits for the disk.
    saver = _RawDataSaver()
    try:
        _loop(conn, executor, config, saver)
    finally:
        saver.close()


class _Inbox:
    """Receives the daemon's messages on a thread: jobs queue up, stops apply at once."""

    def __init__(self, conn: Connection, executor: Any) -> None:
        self._conn = conn
        self._executor = executor
        self._jobs: queue.Queue[tuple[str, int, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: tuple[str, int] | None = None
        self._stopped: set[tuple[str, int]] = set()
        threading.Thread(target=self._read, name="qpi-worker-inbox", daemon=True).start()

    def next_job(self) -> tuple[str, int, Any] | None:
        """The next job to run, or None when the worker should exit."""
        job = self._jobs.get()
        if job is not None:
            with self._lock:
                self._current = (job[0], job[1])
                self._executor.clear_stop()
                if self._current in self._stopped:
                    self._executor.request_stop()  # stopped while it was queued
        return job

    def stop_requested(self, job_id: str, attempt: int) -> bool:
        """Whether a stop for this job arrived (consumes it); the job is over."""
        with self._lock:
            self._current = None
            if (job_id, attempt) in self._stopped:
                self._stopped.discard((job_id, attempt))
                return True
            return False

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break  # the daemon is gone; exiting avoids an orphan
            if message is None:
                break
            if message[0] == "stop_job":
                self._stop((message[1], message[2]))
            else:
                _, job_id, attempt, payload = message
                self._jobs.put((job_id, attempt, payload))
        self._jobs.put(None)

    def _stop(self, job: tuple[str, int]) -> None:
        with self._lock:
            self._stopped.add(job)
            if self._current == job:
                self._executor.request_stop()


def _loop(conn: Connection, executor: Any, config: WorkerConfig, saver: _RawDataSaver) -> None:
    from qpi.driver.executors.base import JobStopped

    inbox = _Inbox(conn, executor)
    while (job := inbox.next_job()) is not None:
        job_id, attempt, payload = job
        started = time.perf_counter()
        dataset = None
        reply: tuple[Any, ...]
        try:
            executor.check_stop()  # stopped while queued
            dataset = executor.execute(payload)
            result = executor.process_result(dataset, job_id)
            seconds = time.perf_counter() - started
            reply = ("result", job_id, attempt, json.dumps(result), None, seconds)
        except JobStopped:
            reply = ("stopped", job_id, attempt, time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a job error
            seconds = time.perf_counter() - started
            log.warning("job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, ValueError))
            reply = ("result", job_id, attempt, None, describe_error(exc), seconds)
        if inbox.stop_requested(job_id, attempt) and reply[0] == "result":
            # The job ended on its own before noticing the stop: the daemon no longer
            # wants its outcome, only to know the worker is free.
            reply = ("stopped", job_id, attempt, time.perf_counter() - started)
        conn.send(reply)
        # Saving happens after the result left, so disk speed never delays a result.
        if dataset is not None and config.save_raw_data:
            saver.submit(dataset, config.data_dir / "raw" / f"{job_id}-{attempt}.nc")


def _save_raw(dataset: Any, path: Path) -> None:
    from qpi.driver.results import save_dataset

    try:
        save_dataset(dataset, path)
    except Exception:  # noqa: BLE001 - raw data is a convenience, never a job failure
        log.exception("could not save raw data to %s", path)
