"""A safe parser and evaluator for the PocketBase filter subset the clients use.

Grammar (no ``eval``; everything is tokenised and parsed by hand)::

    expr    := and ( "||" and )*
    and     := atom ( "&&" atom )*
    atom    := "(" expr ")" | operand OP operand
    OP      := "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
    operand := field | 'single' | "double" | number | true | false | null | @now

Every comparison must involve at least one known field, so constant conditions such as
``1=1`` are rejected rather than silently widening a query. Filters are evaluated in Python
over records the caller is already allowed to see; any problem raises :class:`FilterError`.
``~`` and ``!~`` match in linear time (:mod:`qpi.gateway.like`), and one evaluation over a
listing spends at most a :class:`Budget` of characters and seconds.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qpi.gateway.like import LikePattern, compile_like
from qpi.gateway.timefmt import DateFormatError, now_string, parse_datetime

__all__ = [
    "Budget",
    "FilterBudgetError",
    "FilterError",
    "evaluate",
    "now_string",
    "parse",
    "select",
    "uses_like",
]

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32
MATCH_CHARS_BUDGET = 64_000_000
"""Characters ``~``/``!~`` may examine while one listing is filtered (tens of ms of work)."""
MATCH_SECONDS_BUDGET = 2.0
"""Wall-clock limit of filtering one listing, a backstop for the character budget."""

COMPARISON_OPS = ("!=", "<=", ">=", "!~", "=", "<", ">", "~")


class FilterError(ValueError):
    """The filter (or sort) expression is malformed or names an unknown field."""


class FilterBudgetError(FilterError):
    """Evaluating the filter would take more work than one request may spend."""


@dataclass
class Budget:
    """The work one filtering of a listing may still spend (not thread-safe; one per call)."""

    chars: int = MATCH_CHARS_BUDGET
    seconds: float = MATCH_SECONDS_BUDGET
    _deadline: float = field(default=0.0, repr=False)

    def spend(self, chars: int) -> None:
        """Account for ``chars`` characters of matching.

        Raises:
            FilterBudgetError: When the characters or the time are used up.
        """
        if not self._deadline:
            self._deadline = time.monotonic() + self.seconds
        self.chars -= chars
        if self.chars < 0:
            raise FilterBudgetError(
                "the ~ conditions would compare more than "
                f"{MATCH_CHARS_BUDGET:,} characters; narrow the filter with other conditions"
            )
        if time.monotonic() > self._deadline:
            raise FilterBudgetError(
                f"evaluating the filter took longer than {self.seconds:g} s; "
                "narrow it with other conditions"
            )


@dataclass(frozen=True)
class Field:
    """A reference to a record field."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A constant: string, number, bool or None."""

    value: str | float | bool | None


@dataclass(frozen=True)
class Now:
    """The ``@now`` macro, resolved at evaluation time."""


Operand = Field | Literal | Now


@dataclass(frozen=True)
class Compare:
    """``left OP right``."""

    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class BoolOp:
    """``&&`` (``op == "and"``) or ``||`` (``op == "or"``) over two or more terms."""

    op: str
    terms: tuple[Node, ...]


Node = Compare | BoolOp


@dataclass(frozen=True)
class _Token:
    kind: str  # "op", "logic", "lparen", "rparen", "str", "num", "ident", "macro"
    text: str
    value: Any = None


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_MACRO = re.compile(r"@[A-Za-z]+")


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(chars), i + 1
        chars.append(ch)
        i += 1
    raise FilterError(f"unterminated string starting at position {start}")


def tokenize(text: str) -> list[_Token]:
    """Split a filter into tokens.

    Raises:
        FilterError: On any character that cannot start a token.
    """
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("&&", "||"), i):
            tokens.append(_Token("logic", text[i : i + 2]))
            i += 2
        elif ch in "()":
            tokens.append(_Token("lparen" if ch == "(" else "rparen", ch))
            i += 1
        elif ch in "'\"":
            value, i = _read_string(text, i)
            tokens.append(_Token("str", value, value))
        elif op := next((o for o in COMPARISON_OPS if text.startswith(o, i)), None):
            tokens.append(_Token("op", op))
            i += len(op)
        elif m := _NUMBER.match(text, i):
            tokens.append(_Token("num", m.group(), float(m.group())))
            i = m.end()
        elif m := _IDENT.match(text, i):
            tokens.append(_Token("ident", m.group()))
            i = m.end()
        elif m := _MACRO.match(text, i):
            tokens.append(_Token("macro", m.group()))
            i = m.end()
        else:
            raise FilterError(f"unexpected character {ch!r} at position {i}")
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], fields: Collection[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.pos += 1
        return token

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FilterError("filter is nested too deeply")
        terms = [self.conjunction(depth)]
        while (t := self.peek()) is not None and t.text == "||":
            self.pos += 1
            terms.append(self.conjunction(depth))
        return terms[0] if len(terms) == 1 else BoolOp("or", tuple(terms))

    def conjunction(self, depth: int) -> Node:
        terms = [self.atom(depth)]
        while (t := self.peek()) is not None and t.text == "&&":
            self.pos += 1
            terms.append(self.atom(depth))
        return terms[0] if len(terms) == 1 else BoolOp("and", tuple(terms))

    def atom(self, depth: int) -> Node:
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.pos += 1
            node = self.expr(depth + 1)
            if self.take().kind != "rparen":
                raise FilterError("expected ')'")
            return node
        left = self.operand()
        op = self.take()
        if op.kind != "op":
            raise FilterError(f"expected a comparison operator, got {op.text!r}")
        right = self.operand()
        if not isinstance(left, Field) and not isinstance(right, Field):
            raise FilterError("each comparison must reference a field")
        return Compare(left, op.text, right)

    def operand(self) -> Operand:
        token = self.take()
        if token.kind in ("str", "num"):
            return Literal(token.value)
        if token.kind == "macro":
            if token.text != "@now":
                raise FilterError(f"unknown macro {token.text!r}")
            return Now()
        if token.kind == "ident":
            keyword = token.text.lower()
            if keyword in ("true", "false"):
                return Literal(keyword == "true")
            if keyword == "null":
                return Literal(None)
            if token.text not in self.fields:
                raise FilterError(f"unknown field {token.text!r}")
            return Field(token.text)
        raise FilterError(f"expected a field or a value, got {token.text!r}")


def parse(text: str, fields: Collection[str]) -> Node | None:
    """Parse a filter expression.

    Args:
        text: The filter; empty or blank means "no filter".
        fields: Names of the fields that may be referenced.

    Returns:
        The AST, or None for an empty filter.

    Raises:
        FilterError: On syntax errors, unknown fields or macros, or excessive size.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError("filter is too long")
    tokens = tokenize(text)
    if not tokens:
        return None
    parser = _Parser(tokens, fields)
    node = parser.expr(0)
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return node


def _resolve(operand: Operand, record: Mapping[str, Any], now: str) -> Any:
    if isinstance(operand, Field):
        return record.get(operand.name)
    if isinstance(operand, Now):
        return now
    return operand.value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


@functools.lru_cache(maxsize=256)
def _pattern(text: str) -> LikePattern:
    return compile_like(text)


def _like(value: Any, pattern: Any, budget: Budget | None) -> bool:
    text = "" if value is None else str(value)
    compiled = _pattern("" if pattern is None else str(pattern))
    if budget is not None:
        budget.spend(len(text) + compiled.cost)
    return compiled.matches(text)


def _as_comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Bring two scalars to a common comparable type, or None if they cannot be compared."""
    if left is None:
        left = ""
    if right is None:
        right = ""
    if _is_number(left) and _is_number(right):
        return float(left), float(right)
    if isinstance(left, str) and isinstance(right, str):
        if left and right and left[:1].isdigit() and right[:1].isdigit():
            try:
                return parse_datetime(left), parse_datetime(right)
            except DateFormatError:
                pass
        return left, right
    for number, text, swap in ((left, right, False), (right, left, True)):
        if _is_number(number) and isinstance(text, str):
            try:
                pair = (float(number), float(text))
            except ValueError:
                return None
            return (pair[1], pair[0]) if swap else pair
    return None


def _compare_scalar(left: Any, op: str, right: Any, budget: Budget | None = None) -> bool:
    if op in ("~", "!~"):
        if isinstance(left, list):
            hit = any(_compare_scalar(item, "~", right, budget) for item in left)
        else:
            hit = _like(left, right, budget)
        return hit if op == "~" else not hit
    if isinstance(left, list) or isinstance(right, list):
        items, other = (left, right) if isinstance(left, list) else (right, left)
        if other is None or other == "":
            empty = not items
            return empty if op == "=" else (not empty if op == "!=" else False)
        positive = "=" if op == "!=" else op
        hit = any(_compare_scalar(item, positive, other) for item in items)
        return not hit if op == "!=" else hit
    pair = _as_comparable(left, right)
    if pair is None:
        return op == "!="
    a, b = pair
    try:
        return bool(
            {
                "=": lambda: a == b,
                "!=": lambda: a != b,
                "<": lambda: a < b,
                "<=": lambda: a <= b,
                ">": lambda: a > b,
                ">=": lambda: a >= b,
            }[op]()
        )
    except TypeError:
        return op == "!="


def evaluate(
    node: Node | None,
    record: Mapping[str, Any],
    now: str | None = None,
    budget: Budget | None = None,
) -> bool:
    """Whether ``record`` matches the parsed filter (None matches everything).

    Args:
        node: AST from :func:`parse`.
        record: A REST record (field name → JSON value).
        now: Value of ``@now``; defaults to the current time.
        budget: Work still allowed (shared across the records of one listing).

    Returns:
        True when the record matches.

    Raises:
        FilterBudgetError: When ``budget`` runs out.
    """
    if node is None:
        return True
    now = now or now_string()
    if isinstance(node, BoolOp):
        results = (evaluate(term, record, now, budget) for term in node.terms)
        return all(results) if node.op == "and" else any(results)
    left = _resolve(node.left, record, now)
    right = _resolve(node.right, record, now)
    return _compare_scalar(left, node.op, right, budget)


def uses_like(node: Node | None) -> bool:
    """Whether the filter contains ``~`` or ``!~`` (whose cost grows with field sizes)."""
    if node is None:
        return False
    if isinstance(node, BoolOp):
        return any(uses_like(term) for term in node.terms)
    return node.op in ("~", "!~")


def select(
    node: Node | None,
    records: Iterable[Mapping[str, Any]],
    now: str | None = None,
    budget: Budget | None = None,
) -> list[Mapping[str, Any]]:
    """The records matching ``node``, spending at most ``budget`` (a fresh one by default).

    Raises:
        FilterBudgetError: When the budget runs out before every record was checked.
    """
    now = now or now_string()
    budget = budget if budget is not None else Budget()
    return [record for record in records if evaluate(node, record, now, budget)]
