"""QPU-time request workflow."""

from __future__ import annotations

import math

import pytest

from qpi.server.domain.errors import FailedPreconditionError, InvalidArgumentError
from qpi.server.domain.time_requests import (
    TimeRequestState,
    approve,
    credit,
    ensure_pending,
    reject,
    transition,
    validate_seconds,
)


def test_pending_can_be_approved_or_rejected() -> None:
    assert approve(TimeRequestState.PENDING) is TimeRequestState.APPROVED
    assert reject("pending") is TimeRequestState.REJECTED
    assert transition("pending", "approved") is TimeRequestState.APPROVED


@pytest.mark.parametrize("state", ["approved", "rejected"])
@pytest.mark.parametrize("step", [approve, reject])
def test_processed_requests_are_final(state: str, step: object) -> None:
    with pytest.raises(FailedPreconditionError) as info:
        step(state)  # type: ignore[operator]
    assert info.value.reason == "TIME_REQUEST_PROCESSED"
    assert info.value.message == "Cannot update a request that has already been processed."


def test_delete_only_while_pending() -> None:
    ensure_pending("pending", "delete")
    with pytest.raises(FailedPreconditionError) as info:
        ensure_pending("approved", "delete")
    assert info.value.message == "Cannot delete a request that has already been processed."


@pytest.mark.parametrize("target", ["pending", "bogus"])
def test_target_must_be_a_processed_state(target: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        transition("pending", target)
    assert info.value.field == "state"


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf])
def test_seconds_must_be_positive_and_finite(seconds: float) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_seconds(seconds)
    assert info.value.reason == "INVALID_FIELD"
    assert info.value.field == "seconds"


def test_valid_seconds_and_credit() -> None:
    assert validate_seconds(0.5) == 0.5
    assert credit(10.0, 5.0) == 15.0
