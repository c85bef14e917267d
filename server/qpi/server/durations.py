"""Duration strings (``5s``, ``250ms``, ``1h30m``): re-exported from `qpi.common.durations`,
the single implementation the server and the driver daemon share."""

from __future__ import annotations

from qpi.common.durations import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]
