"""Server-side OpenQASM check: is each circuit a circuit, and how many qubits it needs.

Executor-specific limits (gate sets, device size) are the driver's business; the server
only refuses text that is not a circuit at all, so the user hears about it at submit time.

QASM is untrusted input, so the check runs in stages, each bounding the next:

1. :mod:`qpi.server.domain.qasm_budget` pre-scans the text (includes, widths, expanded
   operations, finite numbers) in time linear in its size;
2. only then does Qiskit's parser run, in a :class:`QasmParserPool` worker process with a
   wall-clock limit per job and an address-space limit per process. A submission that
   exceeds either is refused with ``PARSE_BUDGET_EXCEEDED``; the worker is replaced.

Parsing never happens on the event loop or on a database thread, and several workers
mean one large submission does not hold up the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import multiprocessing
import os
import resource
import signal
import threading
import typing
import warnings
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from qpi.server.domain.errors import InvalidArgumentError, QpiError, UnavailableError
from qpi.server.domain.qasm_budget import LIGHT_WORK, QasmBudget, quick_estimate, scan_job
from qpi.server.services.qasm_cache import WidthCache, digest

_T = TypeVar("_T")

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

logger = logging.getLogger(__name__)

DEFAULT_BUDGET = QasmBudget(max_width=1_000, max_operations=500_000)
"""Pre-scan limits used when none are configured (the server's defaults)."""

PARSE_LOCK = threading.Lock()
"""Qiskit's native code can crash the process when used from several threads at once (a
segfault in qasm2.loads was seen while another thread transpiled): every in-process parse
takes this lock. Pool workers are single-threaded processes and never contend for it."""

# Native libraries read these at import: one thread each keeps a worker's footprint small
# and predictable under its address-space limit (and a fork of the preloaded fork server
# safe: no native thread pool exists to be left behind in the child).
SINGLE_THREADED = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "QISKIT_NUM_PROCS": "1",
    "MALLOC_ARENA_MAX": "2",
    "RUST_BACKTRACE": "0",  # an allocation failure under the limit is expected, not a bug
}
WARM_UP_SOURCES = [
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n',
    'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\ncx q[0], q[1];\n',
]
_TASKS_PER_WORKER = 500
"""Workers are replaced after this many jobs, so fragmentation never accumulates."""


def _invalid(index: int, version: str, detail: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "INVALID_QASM",
        f"Circuit {index} is not valid OpenQASM {version}: {detail}",
        field=f"circuits[{index}].qasm",
        metadata={"circuit_index": index, "detail": detail},
    )


def _parse(qasm: str, version: str) -> QuantumCircuit:
    if version == "3":
        from qiskit import qasm3

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return qasm3.loads(qasm)
    from qiskit import qasm2

    # No include path: the standard qelib1.inc is built in, and nothing else is read
    # (the pre-scan already refused other includes).
    return qasm2.loads(qasm, include_path=(), custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def _check_parameters(circuit: QuantumCircuit, index: int) -> None:
    """Numeric gate parameters must be finite (an expression like `1e300*1e300` is not)."""
    for instruction in circuit.data:
        for param in instruction.operation.params:
            if isinstance(param, int | float) and not math.isfinite(param):
                raise InvalidArgumentError(
                    "INVALID_QASM",
                    f"Circuit {index} applies {instruction.operation.name} with the "
                    f"non-finite parameter {param}.",
                    metadata={"circuit_index": index, "value": param},
                    field=f"circuits[{index}].qasm",
                )


def analyse(sources: list[str], budget: QasmBudget) -> int:
    """Pre-scans, then parses every circuit; returns the widest circuit's qubit count.

    Raises:
        InvalidArgumentError: QASM_INCLUDE_FORBIDDEN, CIRCUIT_TOO_LARGE or INVALID_QASM,
            naming the circuit.
    """
    # Every circuit is pre-scanned before any is parsed: an oversized last circuit is
    # refused without parsing the ones before it.
    costs = list(scan_job(sources, budget))
    widest = 0
    for index, (source, cost) in enumerate(zip(sources, costs, strict=True)):
        try:
            with PARSE_LOCK:
                circuit = _parse(source, cost.version)
        except (KeyboardInterrupt, SystemExit, asyncio.CancelledError, MemoryError):
            raise
        except BaseException as exc:  # noqa: BLE001 - the Rust parser panics with a BaseException
            raise _invalid(index, cost.version, " ".join(str(exc).split())[:300]) from exc
        _check_parameters(circuit, index)
        widest = max(widest, int(circuit.num_qubits))
    return widest


def warm_parsers() -> None:
    """Imports and exercises both Qiskit parsers (their first use is the slow one)."""
    with contextlib.suppress(Exception):
        analyse(WARM_UP_SOURCES[:1], DEFAULT_BUDGET)
        analyse(WARM_UP_SOURCES[1:], DEFAULT_BUDGET)


# -- worker process ----------------------------------------------------------------------


def _address_space() -> int:
    """This process's current virtual size in bytes (Linux)."""
    pages = Path("/proc/self/statm").read_text(encoding="ascii").split()[0]
    return int(pages) * os.sysconf("SC_PAGE_SIZE")


def _worker_init(memory_bytes: int) -> None:
    """Runs first in each worker: import Qiskit, then cap the address space.

    The cap is what the warmed-up worker already maps plus ``memory_bytes``: importing
    Qiskit alone maps over a gigabyte of (mostly untouched) address space, so a fixed
    cap would say more about the libraries than about the circuit.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server to handle
    os.environ.update(SINGLE_THREADED)
    with contextlib.suppress(Exception):
        warm_parsers()
    limit = _address_space() + memory_bytes
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker_analyse(sources: list[str], budget: QasmBudget) -> int:
    """Pool task: :func:`analyse`, with running out of memory reported as such."""
    try:
        return analyse(sources, budget)
    except MemoryError:
        raise _MemoryExceeded() from None


BatchWidths = tuple[list[int], tuple[int, InvalidArgumentError] | None]
"""Per job of a batch, the widest circuit's qubits; and the first refused job, if any."""


def _worker_analyse_each(groups: list[list[str]], budget: QasmBudget) -> BatchWidths:
    """Pool task for a batch: :func:`analyse` per job until the first refused one (a batch
    is all or nothing), as (widths so far, (index, error) or None)."""
    widths: list[int] = []
    try:
        for index, sources in enumerate(groups):
            try:
                widths.append(analyse(sources, budget))
            except InvalidArgumentError as exc:
                return widths, (index, exc)
    except MemoryError:
        raise _MemoryExceeded() from None
    return widths, None


class _MemoryExceeded(Exception):
    """Raised in a worker whose allocation failed under its address-space limit."""


def _warm(_: int) -> int:
    return os.getpid()


# -- the pool ------------------------------------------------------------------------------

_PRELOAD_MODULE = "qpi.server.services.qasm_preload"


def _worker_context() -> multiprocessing.context.BaseContext:
    """The fork-server context, its server preloading the warmed parsers (one per process,
    started on first use and shared by every pool of the process)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_PRELOAD_MODULE])
    return context


@dataclass(frozen=True)
class ParserLimits:
    """Budgets of the parser pool (server options)."""

    budget: QasmBudget = DEFAULT_BUDGET
    max_parse_time: float = 120.0
    """Seconds one job's circuits may take to parse."""
    max_parser_memory: int = 512 * 1024 * 1024
    """Bytes a worker may allocate beyond its warmed-up size."""
    processes: int = 2
    """Worker processes (parses running at once); with two or more, one is kept for
    light jobs."""
    max_queued: int = 64
    """Submissions waiting for a worker before new ones are refused with PARSER_BUSY."""


class QasmParserPool:
    """Parses circuits in worker processes with per-job time and memory budgets.

    Two lanes keep small submissions from waiting behind large ones: with two or more
    processes, one worker takes only light jobs (a cheap estimate, see
    :func:`quick_estimate`) and the others take the rest. Workers are replaced when a
    job overruns its time (the worker is killed), exhausts its memory, crashes, or has
    served ``_TASKS_PER_WORKER`` jobs.

    Workers come from a fork server (the server has gRPC threads, so forking the server
    itself is unsafe) that imported and warmed Qiskit once (:mod:`.qasm_preload`): a new
    or replacement worker is a fork of a warm interpreter, ready in milliseconds instead
    of the seconds a fresh import takes, so a hostile job that gets its worker killed does
    not leave its lane cold.
    """

    def __init__(self, limits: ParserLimits | None = None) -> None:
        self.limits = limits or ParserLimits()
        self._lock = threading.Lock()
        self._pools: dict[str, ProcessPool] = {}
        self._waiting = 0
        processes = self.limits.processes
        self._sizes = {"light": 1, "heavy": processes - 1} if processes > 1 else {"any": 1}
        # Circuits accepted before skip the worker round trip (see qasm_cache).
        self._accepted = WidthCache()

    def _lane(self, heavy: bool) -> str:
        if "any" in self._sizes:
            return "any"
        return "heavy" if heavy else "light"

    def _executor(self, lane: str) -> ProcessPool:
        with self._lock:
            pool = self._pools.get(lane)
            if pool is None or not pool.active:
                pool = self._pools[lane] = ProcessPool(
                    max_workers=self._sizes[lane],
                    max_tasks=_TASKS_PER_WORKER,
                    initializer=_worker_init,
                    initargs=(self.limits.max_parser_memory,),
                    context=_worker_context(),
                )
            return pool

    def warm_up(self, timeout: float = 120.0) -> None:
        """Starts every worker (importing Qiskit there) ahead of the first submission."""
        futures = [
            self._executor(lane).schedule(_warm, (i,))
            for lane, size in self._sizes.items()
            for i in range(size)
        ]
        for future in futures:
            future.result(timeout=timeout)

    async def max_qubits(self, sources: list[str]) -> int:
        """The widest circuit's qubit count, computed in a worker within the budgets.

        Raises:
            InvalidArgumentError: from :func:`analyse`, or PARSE_BUDGET_EXCEEDED.
            UnavailableError: PARSER_BUSY when too many submissions are already waiting.
        """
        key = digest(sources)
        known = self._accepted.get(key)
        if known is not None:
            return known
        if self._waiting >= self.limits.max_queued:
            raise UnavailableError(
                "PARSER_BUSY",
                f"{self._waiting} submissions are already waiting for a circuit parser; "
                "retry shortly.",
                metadata={"waiting": self._waiting},
                retry_after=5.0,
            )
        lane = self._lane(quick_estimate(sources, LIGHT_WORK) > LIGHT_WORK)
        qubits: int = await self._run(lane, _worker_analyse, (sources, self.limits.budget))
        self._accepted.put(key, qubits)
        return qubits

    async def max_qubits_each(self, groups: list[list[str]]) -> BatchWidths:
        """:meth:`max_qubits` for every job of a batch, in one task of the heavy lane
        (one round trip instead of one per job); the batch gets one job's time budget.
        Returns the widths and the first refused job (index, error), if any.

        Raises:
            InvalidArgumentError: PARSE_BUDGET_EXCEEDED.
            UnavailableError: PARSER_BUSY.
        """
        lane = self._lane(True)
        widths: BatchWidths = await self._run(
            lane, _worker_analyse_each, (groups, self.limits.budget)
        )
        return widths

    async def _run(self, lane: str, task: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        """Runs `task` in `lane` within the time budget, mapping the pool's failures to
        precise errors."""
        if self._waiting >= self.limits.max_queued:
            raise UnavailableError(
                "PARSER_BUSY",
                f"{self._waiting} submissions are already waiting for a circuit parser; "
                "retry shortly.",
                metadata={"waiting": self._waiting},
                retry_after=5.0,
            )
        self._waiting += 1
        try:
            future = self._executor(lane).schedule(task, args, timeout=self.limits.max_parse_time)
            try:
                # pebble futures are concurrent.futures.Futures; its stubs disagree.
                plain = typing.cast("concurrent.futures.Future[_T]", future)
                return await asyncio.wrap_future(plain)
            except asyncio.CancelledError:
                future.cancel()  # type: ignore[no-untyped-call]  # the caller went away: free the worker
                raise
        except QpiError:
            raise
        except concurrent.futures.TimeoutError:
            raise self._over_time() from None
        except _MemoryExceeded:
            raise self._over_memory() from None
        except ProcessExpired as exc:
            raise self._died(exc.exitcode) from None
        except BrokenProcessPool:
            with self._lock:
                self._pools.pop(lane, None)  # the next submission starts a fresh pool
            raise self._died(None) from None
        finally:
            self._waiting -= 1

    def _over_time(self) -> InvalidArgumentError:
        seconds = self.limits.max_parse_time
        return InvalidArgumentError(
            "PARSE_BUDGET_EXCEEDED",
            f"Parsing the circuits took longer than {seconds:g} s (server option "
            "--max-parse-time); submit fewer or smaller circuits.",
            metadata={"limit": "max_parse_time", "max": seconds},
            field="circuits",
        )

    def _over_memory(self) -> InvalidArgumentError:
        mib = self.limits.max_parser_memory // (1024 * 1024)
        return InvalidArgumentError(
            "PARSE_BUDGET_EXCEEDED",
            f"Parsing the circuits needed more than {mib} MiB (server option "
            "--max-parser-memory); submit fewer or smaller circuits.",
            metadata={"limit": "max_parser_memory", "max": self.limits.max_parser_memory},
            field="circuits",
        )

    def _died(self, exitcode: int | None) -> InvalidArgumentError:
        logger.warning("QASM parser process died (exit code %s)", exitcode)
        if exitcode == -signal.SIGABRT:
            # Native code aborts when an allocation fails under the address-space limit.
            return self._over_memory()
        return InvalidArgumentError(
            "INVALID_QASM",
            f"The circuits could not be parsed: the parser crashed (exit code {exitcode}).",
            metadata={"exit_code": exitcode},
            field="circuits",
        )

    def close(self) -> None:
        """Stops the workers (a running parse is killed)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.stop()  # type: ignore[no-untyped-call]
        for pool in pools:
            with contextlib.suppress(Exception):
                pool.join(timeout=5)


def in_process(budget: QasmBudget = DEFAULT_BUDGET) -> Callable[[list[str]], int]:
    """A synchronous `max_qubits` for tests and tools that run without the pool."""

    def max_qubits(sources: list[str]) -> int:
        return analyse(sources, budget)

    return max_qubits
