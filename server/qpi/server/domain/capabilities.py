"""Rules about what a QPU's executor can do, from the capabilities its driver announced."""

from __future__ import annotations

from qpi.server.domain.errors import FailedPreconditionError
from qpi.server.domain.models import Qpu

_LEVEL_NAMES = {0: "raw traces", 1: "kerneled IQ points", 2: "discriminated counts"}


def ensure_meas_level_supported(qpu: Qpu, meas_level: int) -> None:
    """Refuses a job whose measurement level the QPU's executor did not announce.

    A QPU whose driver announced nothing (never connected, or a driver that does not
    describe itself, such as the published NNG daemon) accepts every level: the driver
    then reports the failure itself.

    Raises:
        FailedPreconditionError: ``MEAS_LEVEL_UNSUPPORTED``, naming the level, the QPU and
            the levels it does support.
    """
    supported = qpu.capabilities.meas_levels
    if not supported or meas_level in supported:
        return
    levels = ", ".join(str(level) for level in sorted(supported))
    kind = _LEVEL_NAMES.get(meas_level, "this level")
    executor = f" ({qpu.executor} executor)" if qpu.executor else ""
    raise FailedPreconditionError(
        "MEAS_LEVEL_UNSUPPORTED",
        f"QPU {qpu.name}{executor} cannot return meas_level {meas_level} ({kind}); "
        f"it supports meas_level {levels}.",
        metadata={
            "meas_level": meas_level,
            "qpu": qpu.name,
            "qpu_id": qpu.id,
            "executor": qpu.executor,
            "supported_meas_levels": levels,
        },
    )
