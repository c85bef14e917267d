"""QPI driver daemon: executes jobs pushed by the QPI server on a local QPU or simulator.

The public surface for people writing their own executors is re-exported here.
"""

from importlib.metadata import PackageNotFoundError, version

from qpi.driver.executors.base import Executor
from qpi.driver.payload import CircuitPayload, JobPayload

try:
    __version__ = version("qpi-driverd")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["CircuitPayload", "Executor", "JobPayload", "__version__"]
