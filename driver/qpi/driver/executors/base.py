"""The executor interface every backend implements."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload


class JobError(ValueError):
    """A job failure whose message is shown to the user verbatim (like any ValueError)."""


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
    """

    name: ClassVar[str] = "executor"
    num_qubits: int | None = None
    native_gates: ClassVar[tuple[str, ...]] = ()
    supported_meas_levels: ClassVar[frozenset[int]] = frozenset({2})

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
