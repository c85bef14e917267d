"""The ``~`` (LIKE) operator of collection filters, matched in linear time.

Semantics, shared with any SQL translation of filters (``ILIKE``/``LIKE ... ESCAPE``):

* ``%`` matches any run of characters, including none; every other character is literal
  (``_`` is *not* a wildcard, so a SQL translation must escape ``_`` and the escape
  character itself);
* a pattern without ``%`` means "contains" (it is wrapped as ``%pattern%``);
* matching ignores case (both sides are lower-cased).

A regular expression built from ``%`` wildcards backtracks: ``%a%a%…%b`` over a long run
of ``a`` takes exponential time. With only ``%`` wildcards, taking the leftmost match of
each literal piece in turn is always correct, so matching is a few ``str.find`` calls
whose total work is bounded by the value's length times the longest piece (linear for
long pieces, where CPython's search is two-way).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LikePattern", "compile_like", "like"]

WILDCARD = "%"


@dataclass(frozen=True)
class LikePattern:
    """A ``%`` pattern split at its wildcards into lower-cased literal pieces.

    The first piece must be a prefix of the value and the last one a suffix (either is
    empty when the pattern starts or ends with ``%``); the pieces in between must occur
    in order, without overlapping.
    """

    pieces: tuple[str, ...]

    @property
    def cost(self) -> int:
        """Characters of pattern text; a match examines at most value length x this."""
        return sum(len(piece) for piece in self.pieces) + 1

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches the pattern (case-insensitively)."""
        text = value.lower()
        first, *middle, last = self.pieces
        start, end = len(first), len(text) - len(last)
        if end < start or not text.startswith(first) or not text.endswith(last):
            return False
        for piece in middle:
            found = text.find(piece, start, end)
            if found < 0:
                return False
            start = found + len(piece)
        return True


def compile_like(pattern: str) -> LikePattern:
    """Split a filter's ``~`` operand into a :class:`LikePattern`.

    A pattern without ``%`` is a "contains" search, as PocketBase defines ``~``.
    """
    if WILDCARD not in pattern:
        pattern = f"{WILDCARD}{pattern}{WILDCARD}"
    return LikePattern(tuple(piece.lower() for piece in pattern.split(WILDCARD)))


def like(value: str, pattern: str) -> bool:
    """Whether ``value`` matches the ``~`` operand ``pattern``."""
    return compile_like(pattern).matches(value)
