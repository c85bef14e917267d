"""Duration strings in Go-like syntax (``5s``, ``250ms``, ``1h30m``) as float seconds.

The original server was written in Go and its configuration files use Go duration
syntax, so existing ``qpi.config.yml`` files keep working. A bare number means seconds,
and ``d`` (days) is accepted as a convenience for long lifetimes such as session TTLs.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

# Seconds per unit. "us" and the micro sign variants are what Go accepts for microseconds.
_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # MICRO SIGN, as printed by Go
    "\u03bcs": 1e-6,  # GREEK SMALL LETTER MU, also accepted by Go
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}

# One "<number><unit>" component. Longer units come first so "ms" is not read as "m".
_COMPONENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)")
_BARE_NUMBER = re.compile(r"\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_duration(value: str | int | float) -> float:
    """Parses a duration into seconds.

    Accepts numbers (seconds), numeric strings (``"1.5"``) and unit strings made of one
    or more ``<number><unit>`` parts (``"300us"``, ``"250ms"``, ``"1h30m"``, ``"2d"``).

    Args:
        value: The duration as given by a user.

    Returns:
        The duration in seconds (never negative, always finite).

    Raises:
        ValueError: If the value is empty, negative, not finite or not a duration; the
            message quotes the offending value.
    """
    # bool is an int subclass; "true" as a duration is always a mistake.
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 5s, 250ms, 1h30m or seconds")
    if isinstance(value, int | float):
        return _check_number(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected a string or a number")

    text = value.strip()
    if not text:
        raise ValueError(f"invalid duration {value!r}: empty")
    if text.startswith("-"):
        raise ValueError(f"invalid duration {value!r}: must not be negative")

    if _BARE_NUMBER.fullmatch(text):
        return _check_number(float(text), value)

    body = text[1:] if text.startswith("+") else text
    total = 0.0
    position = 0
    for match in _COMPONENT.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(body) or position == 0:
        raise ValueError(
            f"invalid duration {value!r}: expected e.g. 5s, 250ms, 1h30m or a number of seconds"
        )
    return _check_number(total, value)


def _check_number(seconds: float, original: object) -> float:
    """Rejects values no timer can use."""
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {original!r}: must be finite")
    if seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Formats seconds compactly for help texts (``5s``, ``250ms``, ``720h``, ``1h30m``).

    Args:
        seconds: A non-negative duration.

    Returns:
        A string that :func:`parse_duration` maps back to the same value.
    """
    if seconds == 0:
        return "0s"
    if seconds < 1:
        millis = seconds * 1000
        if millis == int(millis):
            return f"{int(millis)}ms"
        return f"{seconds:g}s"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs:
        parts.append(f"{secs}s")
    return "".join(parts)
