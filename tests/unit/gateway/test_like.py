"""The linear-time ``~`` matcher agrees with the regex it replaced and never backtracks."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from qpi.gateway.like import compile_like, like


def _reference(value: str, pattern: str) -> bool:
    """The old regex translation; exponential in the worst case, fine for tiny inputs."""
    if "%" not in pattern:
        pattern = f"%{pattern}%"
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("hello world", "lo w", True),  # no wildcard: contains
        ("hello world", "LO W", True),  # case-insensitive
        ("hello", "hello%", True),
        ("hello", "%llo", True),
        ("hello", "h%o", True),
        ("hello", "h%x", False),
        ("abc", "a%b%c", True),
        ("abc", "a%c%b", False),
        ("aa", "a%a", True),
        ("a", "a%a", False),  # prefix and suffix may not overlap
        ("", "%", True),
        ("", "", True),
        ("x_y", "x_y", True),
        ("xzy", "x_y", False),  # "_" is literal, not a one-character wildcard
        ("50%", "50%", True),
    ],
)
def test_like_cases(value: str, pattern: str, expected: bool) -> None:
    assert like(value, pattern) is expected
    assert _reference(value, pattern) is expected


def test_like_agrees_with_the_regex_on_random_inputs() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        value = "".join(rng.choice("abAB") for _ in range(rng.randint(0, 8)))
        pattern = "".join(rng.choice("ab%") for _ in range(rng.randint(0, 6)))
        assert like(value, pattern) == _reference(value, pattern), (value, pattern)


def test_every_short_pattern_over_a_small_alphabet() -> None:
    values = ["".join(p) for n in range(5) for p in itertools.product("ab", repeat=n)]
    patterns = ["".join(p) for n in range(5) for p in itertools.product("ab%", repeat=n)]
    for value in values:
        for pattern in patterns:
            assert like(value, pattern) == _reference(value, pattern), (value, pattern)


def test_the_backtracking_worst_case_is_linear() -> None:
    """``%a%a…%b`` over a long run of ``a`` froze the server with the regex matcher."""
    pattern = "%a" * 2000 + "%b"
    assert like("a" * 200_000, pattern) is False
    assert like("a" * 200_000 + "b", pattern) is True


def test_cost_counts_pattern_characters() -> None:
    assert compile_like("%ab%c").cost == 4
