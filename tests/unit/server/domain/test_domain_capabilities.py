"""Refusing at submit what the QPU's executor did not announce (meas_level)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qpi.server.domain.capabilities import ensure_meas_level_supported
from qpi.server.domain.errors import FailedPreconditionError
from qpi.server.domain.models import Qpu, QpuCapabilities

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def qpu(levels: tuple[int, ...], executor: str = "mock") -> Qpu:
    return Qpu(
        id="qpu1",
        name="lab-qpu",
        enabled=True,
        status="online",
        num_qubits=2,
        coupling_map=(),
        native_gates=(),
        executor=executor,
        created=NOW,
        updated=NOW,
        capabilities=QpuCapabilities(meas_levels=levels),
    )


def test_announced_levels_pass() -> None:
    ensure_meas_level_supported(qpu((1, 2)), 1)
    ensure_meas_level_supported(qpu((1, 2)), 2)


def test_unknown_capabilities_accept_every_level() -> None:
    # Never connected, or a driver (the published NNG daemon) that does not describe itself.
    for level in (0, 1, 2):
        ensure_meas_level_supported(qpu(()), level)


def test_unannounced_level_is_refused_precisely() -> None:
    with pytest.raises(FailedPreconditionError) as raised:
        ensure_meas_level_supported(qpu((1, 2), executor="qblox"), 0)
    error = raised.value
    assert error.reason == "MEAS_LEVEL_UNSUPPORTED"
    assert error.message == (
        "QPU lab-qpu (qblox executor) cannot return meas_level 0 (raw traces); "
        "it supports meas_level 1, 2."
    )
    assert error.metadata == {
        "meas_level": "0",
        "qpu": "lab-qpu",
        "qpu_id": "qpu1",
        "executor": "qblox",
        "supported_meas_levels": "1, 2",
    }
