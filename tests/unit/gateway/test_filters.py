"""Filter parser and evaluator: PocketBase subset, safe against arbitrary input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpi.gateway import filters
from qpi.gateway.filters import FilterError

FIELDS = frozenset({"id", "status", "seconds", "start_time", "target_users", "enabled", "name"})

RECORD = {
    "id": "abc123",
    "status": "pending",
    "seconds": 300.0,
    "start_time": "2026-01-02 10:00:00.000Z",
    "target_users": ["u1", "u2"],
    "enabled": True,
    "name": 'It\'s "quoted"',
}


def matches(text: str, record: dict[str, object] = RECORD) -> bool:
    return filters.evaluate(filters.parse(text, FIELDS), record, "2026-01-02 12:00:00.000Z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("status = 'pending'", True),
        ('status = "pending"', True),
        ("status != 'pending'", False),
        ("seconds > 100", True),
        ("seconds <= 299.5", False),
        ("seconds >= 300 && status = 'pending'", True),
        ("status = 'x' || seconds = 300", True),
        ("(status = 'x' || seconds = 300) && id = 'nope'", False),
        ("name ~ 'quoted'", True),
        ("name ~ 'QUOTED'", True),
        ("name !~ 'quoted'", False),
        ("name = 'It\\'s \"quoted\"'", True),
        ("start_time < @now", True),
        ("start_time > '2026-01-02'", True),
        ("target_users ~ 'u2'", True),
        ("target_users = 'u1'", True),
        ("target_users != 'u1'", False),
        ("target_users = ''", False),
        ("enabled = true", True),
        ("enabled = false", False),
        ("id = null", False),
        ("id != null", True),
        ("'pending' = status", True),
        ("status = 1", False),
    ],
)
def test_filter_semantics(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "id != '' || 1=1",
        "1 = 1",
        "'a' = 'a'",
        "password = 'x'",
        "status =",
        "status = 'unterminated",
        "(status = 'a'",
        "status = 'a')",
        "status == 'a'",
        "status = 'a' ; DROP TABLE users",
        "status = 'a' AND id = 'b'",
        "__import__('os').system('id')",
        "@yesterday > start_time",
        "status = @now()",
        "(" * 100 + "status = 'a'" + ")" * 100,
        "x" * (filters.MAX_FILTER_LENGTH + 1),
    ],
)
def test_invalid_filters_raise_filter_error(text: str) -> None:
    with pytest.raises(FilterError):
        filters.parse(text, FIELDS)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_parser_raises_only_filter_error_on_arbitrary_text(text: str) -> None:
    try:
        node = filters.parse(text, FIELDS)
    except FilterError:
        return
    filters.evaluate(node, RECORD)


_TOKENS = st.sampled_from(
    [
        "status",
        "seconds",
        "id",
        "target_users",
        "enabled",
        "unknown",
        "'a'",
        '"b"',
        "1",
        "-2.5",
        "true",
        "null",
        "@now",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "~",
        "!~",
        "&&",
        "||",
        "(",
        ")",
        "'",
        "\\",
        "?=",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=25))
def test_parser_raises_only_filter_error_on_token_soup(tokens: list[str]) -> None:
    try:
        node = filters.parse(" ".join(tokens), FIELDS)
    except FilterError:
        return
    assert isinstance(filters.evaluate(node, RECORD), bool)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(filters.COMPARISON_OPS), _VALUES, st.text(max_size=30))
def test_evaluation_never_raises_for_any_field_value(op: str, value: object, literal: str) -> None:
    quoted = "'" + literal.replace("\\", "\\\\").replace("'", "\\'") + "'"
    node = filters.parse(f"status {op} {quoted}", FIELDS)
    assert isinstance(filters.evaluate(node, {"status": value}), bool)


def test_like_work_is_bounded_by_the_budget() -> None:
    node = filters.parse('name ~ "%x%"', {"name"})
    records = [{"name": "a" * 1000} for _ in range(10)]
    assert filters.select(node, records, budget=filters.Budget(chars=100_000)) == []
    with pytest.raises(filters.FilterBudgetError, match="narrow the filter"):
        filters.select(node, records, budget=filters.Budget(chars=5_000))


def test_uses_like_finds_nested_like_operators() -> None:
    assert filters.uses_like(filters.parse('a = 1 || (b = 2 && c !~ "x")', {"a", "b", "c"}))
    assert not filters.uses_like(filters.parse("a = 1 && b != 2", {"a", "b"}))
    assert not filters.uses_like(None)
