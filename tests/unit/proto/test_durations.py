"""Duration parsing: Go-like unit strings and bare seconds."""

from __future__ import annotations

import pytest

from qpi.common.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("250ms", 0.25),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300us", 0.0003),
        ("300\u00b5s", 0.0003),
        ("10ns", 1e-8),
        ("2d", 172800.0),
        ("720h", 2_592_000.0),
        ("1m0.5s", 60.5),
        ("0", 0.0),
        ("0s", 0.0),
        ("3", 3.0),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        (" 5s ", 5.0),
        ("+5s", 5.0),
        (".5s", 0.5),
        (7, 7.0),
        (0.25, 0.25),
    ],
)
def test_parses_valid_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "-5s",
        "-1",
        "abc",
        "5x",
        "s",
        "5s5",
        "1h 30m",
        "5 s",
        "nan",
        "inf",
        "1e400",
        "--5s",
        "5ss",
        "h1",
    ],
)
def test_rejects_invalid_strings_naming_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), True, False])
def test_rejects_invalid_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_rejects_other_types() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration([5])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (5, "5s"), (5400, "1h30m"), (2_592_000, "720h"), (1.5, "1.5s")],
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
