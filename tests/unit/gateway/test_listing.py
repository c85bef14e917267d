"""Sort parsing, sorting and pagination."""

from __future__ import annotations

import pytest

from qpi.gateway.filters import FilterError
from qpi.gateway.listing import SortKey, parse_sort
from tests.support.sort_oracle import sort_records

FIELDS = frozenset({"created", "name", "start_time", "seconds"})


def test_parse_sort_reads_directions_and_order() -> None:
    assert parse_sort("-created, +name,start_time", FIELDS) == [
        SortKey("created", True),
        SortKey("name", False),
        SortKey("start_time", False),
    ]
    assert parse_sort("", FIELDS) == []
    assert parse_sort(None, FIELDS) == []


@pytest.mark.parametrize("text", ["password", "-", "name,,created", "created;drop"])
def test_parse_sort_rejects_unknown_or_empty_fields(text: str) -> None:
    with pytest.raises(FilterError):
        parse_sort(text, FIELDS)


def test_sort_records_multi_key_and_mixed_types() -> None:
    rows = [
        {"name": "b", "seconds": 2},
        {"name": "a", "seconds": 2},
        {"name": "c", "seconds": None},
        {"name": "d", "seconds": "x"},
    ]
    ordered = sort_records(rows, parse_sort("-seconds,name", FIELDS))
    assert [r["name"] for r in ordered] == ["d", "a", "b", "c"]
