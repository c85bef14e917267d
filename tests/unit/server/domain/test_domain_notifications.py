"""Notification visibility with per-user targets and dismissals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qpi.server.domain.clock import FakeClock
from qpi.server.domain.errors import PermissionDeniedError
from qpi.server.domain.notifications import can_dismiss, dismiss, is_visible

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_broadcast_visible_to_everyone() -> None:
    assert is_visible(set(), None, None, set(), "u1", T0)


def test_targets_are_a_set() -> None:
    targets = {"u1", "u2"}
    assert is_visible(targets, None, None, set(), "u1", T0)
    assert is_visible(targets, None, None, set(), "u2", T0)
    assert not is_visible(targets, None, None, set(), "u3", T0)


def test_visibility_window_is_inclusive() -> None:
    clock = FakeClock(T0)
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    seen = []
    for minutes in (59, 60, 120, 121):
        clock.set(T0 + timedelta(minutes=minutes))
        seen.append(is_visible(set(), start, end, set(), "u1", clock.now()))
    assert seen == [False, True, True, False]


def test_dismissals_are_per_user_and_persist() -> None:
    targets: set[str] = set()
    dismissed = dismiss(frozenset(), targets, "u1")
    dismissed = dismiss(dismissed, targets, "u2")
    assert dismissed == {"u1", "u2"}
    assert not is_visible(targets, None, None, dismissed, "u1", T0)  # not un-dismissed by u2
    assert not is_visible(targets, None, None, dismissed, "u2", T0)
    assert is_visible(targets, None, None, dismissed, "u3", T0)
    assert dismiss(dismissed, targets, "u1") == dismissed  # idempotent


def test_only_addressees_may_dismiss() -> None:
    assert can_dismiss(set(), "anyone")
    assert can_dismiss({"u1", "u2"}, "u2")
    with pytest.raises(PermissionDeniedError) as info:
        can_dismiss({"u1"}, "u3")
    assert info.value.reason == "PERMISSION_DENIED"
    assert info.value.message.startswith("Access denied")
    with pytest.raises(PermissionDeniedError):
        dismiss(set(), {"u1"}, "u3")
