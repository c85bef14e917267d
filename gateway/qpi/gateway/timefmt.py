"""PocketBase date strings (``YYYY-MM-DD HH:MM:SS.mmmZ``) ⇄ protobuf timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$"
"""A PocketBase date string, as the gateway writes them."""
OPTIONAL_DATE_PATTERN = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z)?$"
"""A PocketBase date string or "" (an unset date)."""

_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}:)60")


class DateFormatError(ValueError):
    """A date string could not be parsed."""


def format_datetime(value: datetime) -> str:
    """Format an aware (or naive UTC) datetime as a PocketBase date string.

    Args:
        value: The instant.

    Returns:
        e.g. ``"2026-01-02 03:04:05.678Z"``.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # Not strftime: glibc writes year 1 as "1", not "0001". isoformat pads the year and
    # truncates to milliseconds.
    return value.isoformat(" ", "milliseconds") + "Z"


_EPOCH = datetime(1970, 1, 1)
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def format_timestamp(ts: timestamp_pb2.Timestamp | None) -> str:
    """Format a protobuf timestamp; unset (zero) timestamps become ``""`` as in PocketBase."""
    if ts is None:
        return ""
    seconds, nanos = ts.seconds, ts.nanos
    if seconds == 0 and nanos == 0:
        return ""
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        return format_datetime(ts.ToDatetime(tzinfo=UTC))  # raises as protobuf does
    # What ToDatetime computes, as a naive UTC instant (listings format dozens a page).
    return format_datetime(_EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000))


def now_string() -> str:
    """Return the current time as a PocketBase date string."""
    return format_datetime(datetime.now(UTC))


def parse_datetime(text: str) -> datetime:
    """Parse a PocketBase or ISO-8601 date string into an aware UTC datetime.

    Accepts RFC 3339 (``T`` or ``t``, leap seconds) and PocketBase's space separator,
    optional fractional seconds and ``Z`` or an explicit offset; a string without zone
    is taken as UTC. Instants just outside years 1-9999 UTC are clamped to that range.

    Args:
        text: The date string.

    Returns:
        The instant.

    Raises:
        DateFormatError: If the string is not a date.
    """
    candidate = text.strip()
    if not candidate:
        raise DateFormatError("empty date")
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    candidate = candidate.replace(" ", "T", 1).replace("t", "T", 1)
    # RFC 3339 allows a leap second; Python's datetime does not: count it as :59.
    candidate = _LEAP_SECOND.sub(r"\g<1>59", candidate)
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise DateFormatError(f"invalid date {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # A valid RFC 3339 instant just outside years 1-9999 UTC (e.g. 0001-01-01T00:00+05:00):
        # the nearest representable instant, hours away from it, is as good.
        edge = datetime.min if value.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def to_timestamp(text: str) -> timestamp_pb2.Timestamp:
    """Parse a date string into a protobuf timestamp.

    Raises:
        DateFormatError: If the string is not a date.
    """
    ts = timestamp_pb2.Timestamp()
    try:
        ts.FromDatetime(parse_datetime(text))
    except (OverflowError, ValueError) as exc:
        raise DateFormatError(f"invalid date {text!r}") from exc
    return ts
