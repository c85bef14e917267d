"""The executor interface every backend implements."""

from __future__ import annotations

import abc
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload


class JobError(ValueError):
    """A job failure whose message is shown to the user verbatim (like any ValueError)."""


class JobStopped(Exception):  # noqa: N818 - a stop on request, not an error
    """Raised by `Executor.check_stop` inside `execute` once the job was asked to stop."""


WARM_UP_JOB_ID = "warm-up"
WARM_UP_SHOTS = 16
BELL_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


class Executor(abc.ABC):
    """Runs jobs on one backend; constructed once inside the worker process.

    Subclasses implement `execute` (run the job, return raw data) and `process_result`
    (turn raw data into the Qiskit-compatible result dict). Instances may hold expensive
    state (compiled pass managers, instrument connections) across jobs.

    Attributes:
        name: Executor name reported as the result's `backend`.
        num_qubits: Qubits the backend offers, or None if unknown.
        native_gates: Gate names the backend runs natively.
        supported_meas_levels: Measurement levels `execute` accepts.
        stops_cleanly: `execute` calls `check_stop` often enough (between runs) that a
            cancelled or timed-out job ends without killing the worker process, which
            would otherwise be restarted and warmed up again.
        warm_up_qasm: The circuit `warm_up` runs.
    """

    name: ClassVar[str] = "executor"
    num_qubits: int | None = None
    native_gates: ClassVar[tuple[str, ...]] = ()
    supported_meas_levels: ClassVar[frozenset[int]] = frozenset({2})
    stops_cleanly: ClassVar[bool] = False
    warm_up_qasm: ClassVar[str] = BELL_QASM

    def __init__(self, *, data_dir: Path | None = None, **options: Any) -> None:
        """Stores common options.

        Args:
            data_dir: Directory for executor files (raw data, compiled programs).
            **options: Executor-specific options; unknown ones are ignored so one CLI can
                configure every executor.
        """
        self.data_dir = data_dir
        self.options = options

    @abc.abstractmethod
    def execute(self, payload: JobPayload) -> xr.Dataset:
        """Runs every circuit x parameter set of the job.

        Raises:
            ValueError: For user errors; the message is shown to the user verbatim.
        """

    @abc.abstractmethod
    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        """Converts the dataset returned by `execute` into the result dict."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook, intentionally empty by default
        """Prepares the executor before its first job; called once per worker process,
        before the driver reports ready, so it counts against no job's timeout or bill.

        Heavy imports (xarray, pandas, Qiskit's transpiler passes, vendor compilers) and
        first-call caches would otherwise land in the first job. Nothing by default, since
        only the executor knows what a warm-up may touch; built-in executors run
        `run_warm_up_job` (simulators, dummies) or compile without executing (hardware).
        """

    def run_warm_up_job(self, levels: frozenset[int] = frozenset({1, 2})) -> None:
        """Runs a tiny `warm_up_qasm` job at each supported level of `levels` (1, 2)."""
        from qpi.driver.payload import CircuitPayload, JobPayload

        for level in sorted(self.supported_meas_levels & levels):
            payload = JobPayload(
                circuits=[CircuitPayload(self.warm_up_qasm)],
                id=WARM_UP_JOB_ID,
                shots=WARM_UP_SHOTS,
                meas_level=level,
            )
            self.process_result(self.execute(payload), WARM_UP_JOB_ID)

    def request_stop(self) -> None:
        """Asks the running `execute` to stop at its next `check_stop` (any thread)."""
        self._stop_event().set()

    def check_stop(self) -> None:
        """Raises JobStopped if the running job was asked to stop; call it between runs."""
        if self._stop_event().is_set():
            raise JobStopped

    def clear_stop(self) -> None:
        """Forgets a stop request (the worker calls it before each job)."""
        self._stop_event().clear()

    def _stop_event(self) -> threading.Event:
        # Created on first use: user executors may not call Executor.__init__.
        event = self.__dict__.get("_stop_requested")
        if event is None:
            event = self.__dict__.setdefault("_stop_requested", threading.Event())
        return event  # type: ignore[no-any-return]

    def close(self) -> None:  # noqa: B027 - optional hook, intentionally empty by default
        """Releases backend resources; called once when the worker stops."""

    def capabilities(self) -> dict[str, Any]:
        """What the driver announces in its hello (see `qpi.driver.capabilities`).

        The default suits simulators: all-to-all coupling (empty map), no calibration data.
        Device executors override it with their coupling map and durations.
        """
        from qpi.driver.capabilities import basic_capabilities

        return basic_capabilities(self.num_qubits, self.native_gates, self.supported_meas_levels)

    def check_meas_level(self, meas_level: int) -> None:
        """Raises a precise ValueError when the backend cannot return `meas_level`."""
        if meas_level not in self.supported_meas_levels:
            raise ValueError(
                f"meas_level {meas_level} is not supported by the {self.name} executor"
            )
