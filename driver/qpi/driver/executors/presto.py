"""The `presto` executor: a placeholder until Presto support is written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from qpi.driver.executors.base import Executor, JobError

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload

NOT_IMPLEMENTED = "the presto executor is not implemented yet"


class PrestoExecutor(Executor):
    """Fails every job with a clear message."""

    name: ClassVar[str] = "presto"

    def warm_up(self) -> None:
        """Nothing to warm: every job fails at once."""

    def execute(self, payload: JobPayload) -> xr.Dataset:
        """Always raises."""
        raise JobError(NOT_IMPLEMENTED)

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        """Never reached."""
        raise JobError(NOT_IMPLEMENTED)
