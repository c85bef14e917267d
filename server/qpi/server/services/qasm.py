"""Server-side OpenQASM check: the circuit parses and how many qubits it needs.

Executor-specific limits (gate sets, device size) are the driver's business; the server
only refuses text that is not a circuit at all, so the user hears about it at submit time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from qpi.server.domain.errors import InvalidArgumentError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

_VERSION = re.compile(r"OPENQASM\s+([23])")
# Register declarations: `qreg q[5];` (QASM 2) and `qubit[5] q;` (QASM 3).
_DECLARED = re.compile(r"\b(?:qreg\s+\w+\s*\[\s*(\d+)\s*\]|qubit\s*\[\s*(\d+)\s*\])")

PARSE_LOCK = threading.Lock()
"""Qiskit's native code can crash the process when used from several threads at once (a
segfault in qasm2.loads was seen while another thread transpiled), and PostgreSQL runs
service calls on several threads: every parse in this process takes this lock."""

MAX_DECLARED_QUBITS = 10_000
"""More than any QPU offers; parsing a circuit costs memory proportional to its width."""


def _invalid(index: int, version: str, detail: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "INVALID_QASM",
        f"Circuit {index} is not valid OpenQASM {version}: {detail}",
        field=f"circuits[{index}].qasm",
        metadata={"circuit_index": index, "detail": detail},
    )


def count_qubits(qasm: str, index: int) -> int:
    """Parses `qasm` and returns its qubit count; raises INVALID_QASM naming the circuit."""
    match = _VERSION.search(qasm)
    version = match.group(1) if match else "2"
    declared = sum(int(a or b) for a, b in _DECLARED.findall(qasm))
    if declared > MAX_DECLARED_QUBITS:
        # Checked before parsing: a 30-byte circuit declaring millions of qubits would
        # otherwise take seconds and gigabytes to parse.
        raise _invalid(
            index,
            version,
            f"it declares {declared} qubits; at most {MAX_DECLARED_QUBITS} are accepted",
        )
    try:
        with PARSE_LOCK:
            circuit = _parse(qasm, version)
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the Rust parser panics with a BaseException
        raise _invalid(index, version, " ".join(str(exc).split())[:300]) from exc
    return int(circuit.num_qubits)


def _parse(qasm: str, version: str) -> QuantumCircuit:
    if version == "3":
        from qiskit import qasm3

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return qasm3.loads(qasm)
    from qiskit import qasm2

    return qasm2.loads(qasm, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def _count_all(sources: list[str]) -> tuple[int, tuple[int, str, str] | None]:
    """Worker-process entry: (max qubits, None) or (0, (index, version, detail))."""
    widest = 0
    for index, source in enumerate(sources):
        try:
            widest = max(widest, count_qubits(source, index))
        except InvalidArgumentError as exc:
            return 0, (index, exc.metadata.get("circuit_index", str(index)), exc.message)
    return widest, None


def _count_each(groups: list[list[str]]) -> list[tuple[int, tuple[int, str] | None]]:
    """Worker-process entry for a batch of jobs: per job, what :func:`_count_all` says."""
    out: list[tuple[int, tuple[int, str] | None]] = []
    for sources in groups:
        widest, error = _count_all(sources)
        out.append((widest, None if error is None else (error[0], error[2])))
    return out


class QasmChecker:
    """Parses circuits in a separate process, so Qiskit's native parser (which has
    crashed under thread contention here) can never take the server down with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the server process runs gRPC threads.
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def warm_up(self) -> None:
        """Starts the worker and imports Qiskit there ahead of the first submit."""
        self._executor().submit(_count_all, ["OPENQASM 2.0;\nqreg q[1];\n"]).result(timeout=120)

    def max_qubits(self, sources: list[str]) -> int:
        """The widest circuit's qubit count; raises INVALID_QASM naming the bad circuit."""
        for attempt in range(2):
            try:
                widest, error = self._executor().submit(_count_all, sources).result(timeout=60)
                break
            except BrokenProcessPool:
                with self._lock:
                    self._pool = None  # the parser process died: start a fresh one
                if attempt:
                    raise InvalidArgumentError(
                        "INVALID_QASM",
                        "The circuits could not be parsed (the parser crashed).",
                        field="circuits",
                    ) from None
        if error is not None:
            index, _, message = error
            raise InvalidArgumentError(
                "INVALID_QASM",
                message,
                field=f"circuits[{index}].qasm",
                metadata={"circuit_index": index},
            )
        return widest

    def max_qubits_each(self, groups: list[list[str]]) -> list[int | InvalidArgumentError]:
        """:meth:`max_qubits` of every job of a batch in one round trip to the worker: the
        widest circuit's qubit count per job, or the INVALID_QASM error naming its circuit."""
        try:
            results = self._executor().submit(_count_each, groups).result(timeout=300)
        except BrokenProcessPool:
            with self._lock:
                self._pool = None  # the parser process died: start a fresh one
            raise InvalidArgumentError(
                "INVALID_QASM",
                "The circuits could not be parsed (the parser crashed).",
                field="circuits",
            ) from None
        out: list[int | InvalidArgumentError] = []
        for widest, error in results:
            if error is None:
                out.append(widest)
                continue
            index, message = error
            out.append(
                InvalidArgumentError(
                    "INVALID_QASM",
                    message,
                    field=f"circuits[{index}].qasm",
                    metadata={"circuit_index": index},
                )
            )
        return out

    def close(self) -> None:
        """Stops the worker process."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
