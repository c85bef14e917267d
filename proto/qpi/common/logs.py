"""One logging policy for every QPI process (`qpi serve`, `qpi-driver` and its worker).

QPI's own loggers (`qpi.*`) log at the chosen level; every other library (qiskit's pass
manager, quantify, qcodes, alembic, grpc, ...) only from WARNING up, unless the level is
DEBUG. Without this a single mock job printed 19 INFO lines from qiskit internals and a
qblox job 128, and none of them said which job ran or how it ended.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["DEFAULT_FORMAT", "THIRD_PARTY_FLOOR", "configure_logging", "level_number"]

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
THIRD_PARTY_FLOOR = logging.WARNING
"""Lowest level shown from non-QPI loggers unless the chosen level is DEBUG."""
_OWN = "qpi"


def level_number(level: str | int) -> int:
    """A logging level as a number (`"info"`, `"INFO"`, `20`).

    Raises:
        ValueError: If it names no standard level.
    """
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number


def _is_own(name: str) -> bool:
    return name == _OWN or name.startswith(_OWN + ".")


class _ThirdPartyFloor(logging.Filter):
    """Drops other libraries' records below the floor, whatever level they set themselves
    (some set their loggers to INFO explicitly, which a root level alone cannot stop)."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor or _is_own(record.name)


def configure_logging(
    level: str | int, fmt: str = DEFAULT_FORMAT, stream: TextIO | None = None
) -> None:
    """Installs the policy on the root logger, replacing earlier handlers.

    Args:
        level: The level chosen by the operator (`--log-level`).
        fmt: Record format.
        stream: Where records go (default stderr).
    """
    chosen = level_number(level)
    floor = chosen if chosen <= logging.DEBUG else max(chosen, THIRD_PARTY_FLOOR)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(_ThirdPartyFloor(floor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(floor)  # other libraries inherit the floor: their records are not even built
    logging.getLogger(_OWN).setLevel(chosen)
