"""What order a listing's sort keys put records in, computed in Python: the oracle the
listing tests compare the store's SQL ordering with (the gateway itself sorts in SQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qpi.gateway.listing import SortKey


def _sort_value(value: Any) -> tuple[int, Any]:
    """Key that orders None/empty first, then numbers, then strings, never mixing types."""
    if value is None or value == "":
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, float(value))
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))


def sort_records(
    records: Sequence[Mapping[str, Any]], keys: Sequence[SortKey]
) -> list[Mapping[str, Any]]:
    """Return the records sorted by ``keys`` (stable)."""
    result = list(records)
    for key in reversed(keys):
        name = key.field

        def sort_key(record: Mapping[str, Any], name: str = name) -> tuple[int, Any]:
            return _sort_value(record.get(name))

        result.sort(key=sort_key, reverse=key.descending)
    return result
