"""Injectable time source.

Domain code never calls ``datetime.now`` itself: it takes a :class:`Clock` (or a ``now``
argument) so tests can drive time with :class:`FakeClock`. All times are timezone-aware
UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that can tell the current time."""

    def now(self) -> datetime:
        """Return the current time as a timezone-aware UTC datetime."""
        ...


def as_utc(dt: datetime, name: str = "datetime") -> datetime:
    """Return ``dt`` converted to UTC, rejecting naive datetimes.

    Args:
        dt: A timezone-aware datetime.
        name: What the value is, for the error message.

    Returns:
        The same instant with ``tzinfo=UTC``.

    Raises:
        ValueError: If ``dt`` is naive.
    """
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class FakeClock:
    """A manually driven clock for tests and simulations.

    Args:
        start: Initial time (timezone-aware); defaults to 2030-01-01T00:00:00Z.
    """

    def __init__(self, start: datetime | None = None) -> None:
        default = datetime(2030, 1, 1, tzinfo=UTC)
        self._now = as_utc(start, "start") if start is not None else default

    def now(self) -> datetime:
        """Return the current fake time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward.

        Args:
            seconds: How far to move; must not be negative.

        Returns:
            The new current time.

        Raises:
            ValueError: If ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot advance by a negative amount; use set()")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, dt: datetime) -> datetime:
        """Jump to ``dt`` (forwards or backwards).

        Args:
            dt: The new time (timezone-aware).

        Returns:
            The new current time.
        """
        self._now = as_utc(dt, "dt")
        return self._now
