"""List queries as plain data: a filter tree, a sort order and a page window.

Transports build a :class:`ListQuery` from their own wire form (the REST gateway from its
PocketBase filter syntax, gRPC from ``qpi.v1.FilterExpression``); the store translates it
into one SQL statement. Field names are checked by the store, which knows which fields
each listing exposes.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FILTER_DEPTH = 32
"""Deepest nesting of AND/OR a filter may have (the gateway's parser allows the same)."""
MAX_FILTER_CONDITIONS = 256
"""Most comparisons one filter may hold (a 4 KiB PocketBase filter holds far fewer)."""
MAX_SORT_KEYS = 16
"""Most sort keys a listing takes (more than any collection has fields; REST drops repeats)."""

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "~", "!~"})


@dataclass(frozen=True)
class FieldRef:
    """A field of the listed resource."""

    name: str


@dataclass(frozen=True)
class Value:
    """A constant: text, number, boolean or None (``null``)."""

    value: str | float | bool | None


@dataclass(frozen=True)
class NowRef:
    """The current time (``@now``), resolved when the query runs."""


Operand = FieldRef | Value | NowRef


@dataclass(frozen=True)
class Condition:
    """``left op right`` with ``op`` one of :data:`OPERATORS`."""

    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class Junction:
    """``op`` is ``"and"`` or ``"or"`` over two or more terms."""

    op: str
    terms: tuple[Filter, ...]


Filter = Condition | Junction


@dataclass(frozen=True)
class SortKey:
    """One sort criterion."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class ListQuery:
    """What to list: a filter, an order, a window, and whether to count all matches."""

    filter: Filter | None = None
    sort: tuple[SortKey, ...] = ()
    offset: int = 0
    limit: int = 100
    count_total: bool = True


@dataclass(frozen=True)
class Total:
    """How many records match a listing: exactly :attr:`count`, or at least that many when
    :attr:`capped` (the count stopped at its cap, see :mod:`qpi.server.store.listing`)."""

    count: int
    capped: bool = False
