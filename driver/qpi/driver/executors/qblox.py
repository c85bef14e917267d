"""The `qblox` executor (extra `qblox`): qblox-scheduler on a Qblox cluster.

Decision: every job fails with `UNSUPPORTED` below. qblox-scheduler 1.0.1 on PyPI ships no
device elements (no transmon), so gate-level schedules cannot compile ("element 'q0' is
not present"); translating gates to pulses by hand would mean re-implementing the device
layer and its calibration parameters, which belongs in a device-element package, not here.
Use the `quantify` executor (quantify-scheduler) for gate-level circuits on Qblox hardware.

The executor still imports qblox-scheduler at start, so a missing extra is reported early,
and it creates no instruments, so it cannot collide with quantify's `ic_cluster0` qcodes
instrument in the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from qpi.driver.executors.base import Executor, JobError

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload

UNSUPPORTED = (
    "the qblox executor cannot run gate-level circuits: qblox-scheduler 1.0.1 ships no "
    "transmon device elements; use the quantify executor instead"
)


class QbloxExecutor(Executor):
    """Rejects every job with a precise reason (see the module docstring)."""

    name: ClassVar[str] = "qblox"

    def __init__(self, **options: Any) -> None:
        """Checks that qblox-scheduler is importable."""
        super().__init__(**options)
        import qblox_scheduler  # noqa: F401 - fail at start when the extra is missing

    def execute(self, payload: JobPayload) -> xr.Dataset:
        """Always raises JobError(UNSUPPORTED)."""
        raise JobError(UNSUPPORTED)

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        """Never reached."""
        raise JobError(UNSUPPORTED)
