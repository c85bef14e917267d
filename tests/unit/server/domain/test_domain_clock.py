"""Clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from qpi.server.domain.clock import Clock, FakeClock, SystemClock, as_utc

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5
    assert isinstance(SystemClock(), Clock)


def test_fake_clock_advance_and_set() -> None:
    clock = FakeClock(T0)
    assert isinstance(clock, Clock)
    assert clock.now() == T0
    assert clock.advance(1.5) == T0 + timedelta(seconds=1.5)
    assert clock.now() == T0 + timedelta(seconds=1.5)
    assert clock.set(T0 - timedelta(hours=1)) == T0 - timedelta(hours=1)


def test_fake_clock_default_start_is_aware() -> None:
    assert FakeClock().now().tzinfo is UTC


def test_fake_clock_rejects_naive_and_backwards_advance() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2030, 1, 1))
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2030, 1, 1))


def test_as_utc_converts_offsets() -> None:
    cet = timezone(timedelta(hours=1))
    converted = as_utc(datetime(2030, 1, 1, 1, tzinfo=cet))
    assert converted == datetime(2030, 1, 1, tzinfo=UTC)
    assert converted.tzinfo is UTC
