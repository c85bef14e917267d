"""A user executor for end-to-end tests: the mock executor that reports what it received.

Loaded by a real `qpi-driver --executor tests.support.echo_executor:EchoExecutor` (with the
repository on PYTHONPATH). Its results carry `received`: the payload fields the driver
handed to the executor, so tests can check a submission end to end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from qpi.driver.executors.mock import MockExecutor

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload

ECHOED = ("acq_rotation", "acq_threshold", "meas_level", "meas_return", "shots")


class EchoExecutor(MockExecutor):
    """MockExecutor whose result includes the payload fields listed in `ECHOED`."""

    name: ClassVar[str] = "echo"

    def execute(self, payload: JobPayload) -> xr.Dataset:
        dataset = super().execute(payload)
        dataset.attrs["received"] = {key: getattr(payload, key) for key in ECHOED}
        return dataset

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        result = super().process_result(dataset, job_id)
        result["received"] = dataset.attrs["received"]
        return result
