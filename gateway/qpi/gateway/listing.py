"""Sorting and pagination of record lists, PocketBase style (``sort=-created,name``)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qpi.gateway.filters import FilterError

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class SortKey:
    """One sort criterion."""

    field: str
    descending: bool


def sort_pattern(fields: Collection[str]) -> str:
    """The regular expression of the ``sort`` values :func:`parse_sort` accepts for ``fields``.

    Published as the parameter's ``pattern`` so that the OpenAPI document says exactly which
    values are valid: one or more comma-separated fields, each optionally prefixed with
    ``+`` or ``-``, spaces allowed around them; empty means no sorting.
    """
    name = "(?:" + "|".join(sorted(fields)) + ")"
    term = f" *[+-]? *{name} *"
    return f"^(?:{term}(?:,{term})*)? *$"


def parse_sort(text: str | None, fields: Collection[str]) -> list[SortKey]:
    """Parse a PocketBase sort expression.

    Args:
        text: e.g. ``"-created,+name"``; empty/None means no sorting.
        fields: Names that may be sorted on.

    Returns:
        The sort keys, most significant first.

    Raises:
        FilterError: On an unknown field or an empty term.
    """
    if not text or not text.strip():
        return []
    keys: list[SortKey] = []
    seen: set[str] = set()
    for raw in text.split(","):
        term = raw.strip()
        descending = term.startswith("-")
        name = term.lstrip("+-").strip()
        if not name:
            raise FilterError("empty sort field")
        if name not in fields:
            raise FilterError(f"unknown sort field {name!r}")
        # A field sorted on again cannot change the order: dropping it keeps any sort the
        # schema allows within the server's bound on sort keys.
        if name not in seen:
            seen.add(name)
            keys.append(SortKey(name, descending))
    return keys


def page_of(
    items: Sequence[Mapping[str, Any]],
    total: int,
    page: int,
    per_page: int,
    *,
    capped: bool = False,
) -> dict[str, Any]:
    """The list response for one page the server already cut out of ``total`` records
    (-1: not counted, as PocketBase answers ``skipTotal``; at least ``total`` when
    ``capped``, the server's count having stopped at its cap)."""
    return {
        "page": page,
        "perPage": per_page,
        "totalItems": total,
        "totalItemsCapped": capped,
        "totalPages": -1 if total < 0 else math.ceil(total / per_page) if total else 0,
        "items": list(items),
    }
