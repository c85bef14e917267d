"""List queries (:mod:`qpi.server.domain.listing`) as SQLAlchemy Core expressions.

A listing declares the fields it exposes (:class:`FieldSpec`: a column expression and a
kind); :func:`compile_filter` and :func:`compile_order` turn a query over those fields into
a WHERE clause and an ORDER BY that run in the database, on SQLite and PostgreSQL alike.

The semantics are the REST gateway's (PocketBase's) record semantics, where every field is
a JSON value: dates are text (``2026-01-02 03:04:05.678Z``, ``""`` when unset), ``null``
equals ``""``, two strings that both start with a digit and parse as dates compare as
instants, a number and a text compare only when the text is a number, and values that
cannot be compared are only ever ``!=``. ``~`` is a case-insensitive LIKE in which only
``%`` is a wildcard (``_`` and ``\\`` are escaped) and a pattern without ``%`` means
"contains".

Bounded work, whatever the filter (a page of 30 among 10^5 rows must stay within a few
index probes):

- Sorts and comparisons on indexed columns run as index range scans; text equality
  compares the bare column (no COALESCE/COLLATE wrapper) so both stores use the index.
- ``~`` and ``!=`` on a field with a closed set of values (a job's ``status``) become
  ``IN`` over the values they match, and ``~`` on a related name (a job's ``qpu_name``
  through the QPU table) a semi-join on the small table: both exact and indexed.
- Any other ``~``/``!~`` (free text: ids, dates) and field-against-field comparisons can
  use no index. Trigram indexes (``pg_trgm``) would serve them on PostgreSQL only and cost
  every insert; SQLite has no equivalent outside an FTS shadow table. Instead such
  conditions are *searched within a window*: the top-level conditions an index answers
  select at most :data:`SCAN_BUDGET` candidate rows in the requested order (the
  newest ones by default), and the remaining conditions filter those. Results are exact
  whenever the indexed conditions leave at most that many candidates, and otherwise cover
  the first :data:`SCAN_BUDGET` of them (the usual "search recent items" behaviour; narrow
  the filter with an indexed condition, e.g. a date range, to reach older rows).
- Totals are counted up to :data:`COUNT_CAP` and reported as ``COUNT_CAP`` beyond, marked
  capped (:class:`~qpi.server.domain.listing.Total`; a search engine's "10,000+"):
  counting is the one step whose cost grows with the number of matches, and no page
  needs an exact total in the hundreds of thousands. A count reads one match past the cap
  to tell "exactly the cap" from "more". When no single index holds every column the
  filter reads, each match costs a row read and the count stops at
  :data:`READ_COUNT_CAP` instead. Paging past the cap still works
  (``next_page_token``/``skip``), only the total is capped.
- A backstop bounds whatever the planner does: a statement running longer than
  :data:`WORK_BUDGET_SECONDS` is cancelled (SQLite progress handler, PostgreSQL
  ``statement_timeout``) and the query refused as ``INVALID_FILTER``. Filters are
  validated (fields, operators, depth, size) before any statement runs.
- Sorts on two or more fields walk the first field's index a group of equal first values
  at a time (:class:`_GroupWalk`): the page's groups are found in one range scan and read
  by equality, in index order when the later field is the creation time; otherwise the
  database sorts the one or two groups the page cuts (their size, not the matches',
  bounds the work; the backstop bounds a huge group), never every match.
- SQLite has no statistics on value ranges: a range on another column than the sort's
  first, when many rows match, is compared off-index so that the sort's index is walked
  (see :func:`run_listing`).
- Not bounded by an index: deep offsets (the index is walked up to the offset) and the
  rows a count visits when no index covers the filter (up to :data:`COUNT_CAP`); both
  stay under the backstop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import iterate

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.listing import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    MAX_SORT_KEYS,
    OPERATORS,
    Condition,
    FieldRef,
    Filter,
    Junction,
    ListQuery,
    NowRef,
    Operand,
    SortKey,
    Total,
    Value,
)

TEXT, DATE, NUMBER = "text", "date", "number"
_MS = timedelta(milliseconds=1)
_MIRROR = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}:)60")
LIKE_ESCAPE = "\\"
SCAN_BUDGET = 2_000
"""Most rows a listing examines for conditions no index answers (free-text ``~``)."""
COUNT_CAP = 10_000
"""Totals are exact up to this many matches and reported as this number beyond (marked
capped), when one index holds every column the filter reads (the count then reads that
index alone)."""
READ_COUNT_CAP = 2_000
"""The cap of a count that must read table rows to test the filter (no index holds all its
columns, e.g. a range on one field and a condition on another): ~1 µs per row read, so
10,000 of them would cost more than the rest of a page several times over."""
WORK_BUDGET_SECONDS = 2.0
"""Backstop: a listing statement running longer is cancelled and refused as INVALID_FILTER
(a filter no index narrows and almost nothing matches scans its whole scope)."""


@dataclass(frozen=True)
class FieldSpec:
    """One filterable, sortable field: its SQL expression and kind (text, date, number).

    Date columns hold naive UTC datetimes (see ``UtcDateTime``) and may be NULL (unset).
    """

    column: ColumnElement[Any]
    kind: str = TEXT
    nullable: bool = False
    lookup: Lookup | None = None
    choices: tuple[str, ...] = ()
    """Every value a text field can hold (e.g. states): ``~`` then becomes an indexed IN."""
    constant: bool = False
    """The same value on every row: filterable, but sorting on it orders nothing."""
    multi: Multi | None = None
    """A list of values kept in another table (e.g. a notification's target users)."""
    free_text: bool = False
    """Text whose order differs between collations (names, not ids): sorted and compared
    by code point (``COLLATE "C"`` on PostgreSQL, where its indexes are declared so)."""


@dataclass(frozen=True)
class Lookup:
    """Where ``~`` on a field finds its values: the rows of a small table (e.g. QPU names)
    whose ``remote`` matches. ``field ~ x`` becomes ``key IN (SELECT remote_key FROM small
    WHERE remote LIKE x)``, a semi-join the big table's index on ``key`` answers."""

    key: ColumnElement[Any]
    remote_key: ColumnElement[Any]
    remote: ColumnElement[Any]


@dataclass(frozen=True)
class Multi:
    """A list-valued field: the ``value`` column of the rows of another table whose
    ``parent`` column references the listed row's ``key``. A condition holds when some
    value meets it (``!=`` and ``!~``: when none equals or matches); ``= ""`` means the
    list is empty. Each test is an EXISTS probe of that table's (parent, value) key."""

    key: ColumnElement[Any]
    parent: ColumnElement[Any]
    value: ColumnElement[Any]

    def any(self, condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
        """Whether some value meets `condition` (some value at all for None)."""
        found = exists().where(self.parent == self.key)
        return found if condition is None else found.where(condition)


def invalid_filter(message: str) -> InvalidArgumentError:
    """The error for a filter or sort the listing cannot run."""
    return InvalidArgumentError("INVALID_FILTER", message, field="filter")


def parse_instant(text: str) -> datetime | None:
    """A date constant as an aware UTC instant, or None if it is not a date.

    Accepts what the gateway writes and RFC 3339: ``T`` or a space, optional fraction,
    ``Z`` or an offset (none means UTC).
    """
    candidate = text.strip()
    if not candidate or not candidate[:1].isdigit():
        return None
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    candidate = _LEAP_SECOND.sub(r"\g<1>59", candidate.replace(" ", "T", 1).replace("t", "T", 1))
    try:
        value = datetime.fromisoformat(candidate)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class _Compiler:
    """Compiles one filter for one dialect."""

    def __init__(
        self,
        fields: Mapping[str, FieldSpec],
        postgres: bool,
        now: datetime,
        unindexed: Sequence[ColumnElement[Any]] = (),
    ) -> None:
        self.fields = fields
        self.postgres = postgres
        self.now = now.astimezone(UTC)
        self.conditions = 0
        self.unindexed = unindexed
        """Columns whose comparisons with values must not pick an index (see
        :func:`run_listing`): they are compared as ``coalesce(col, col)``."""

    def plain(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """`col`, or the same values as an expression no index serves."""
        if any(col is c for c in self.unindexed):
            return func.coalesce(col, col)
        return col

    # -- operands -------------------------------------------------------------------

    def spec(self, name: str) -> FieldSpec:
        spec = self.fields.get(name)
        if spec is None:
            raise invalid_filter(
                f"Unknown field {name!r}; allowed: {', '.join(sorted(self.fields))}."
            )
        return spec

    def text_of(self, spec: FieldSpec) -> ColumnElement[Any]:
        """The field as the record's text (dates formatted, NULL as "")."""
        col = spec.column
        if spec.kind == DATE:
            if self.postgres:
                formatted = func.to_char(col, "YYYY-MM-DD HH24:MI:SS.MS") + literal("Z")
            else:
                # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff": keep the milliseconds.
                formatted = func.substr(col, 1, 23) + literal("Z")
            return func.coalesce(formatted, literal(""))
        if spec.kind == NUMBER:
            return cast(func.coalesce(col, 0.0), String)
        return func.coalesce(col, literal(""))

    def instant_of(self, spec: FieldSpec) -> ColumnElement[Any]:
        """A date field at the records' millisecond precision, ordered and compared as its
        text is ("" when unset, before every date), without formatting it per row."""
        col = spec.column
        if self.postgres:
            value = func.date_trunc("milliseconds", col)
            unset: ColumnElement[Any] = literal_column("'-infinity'::timestamp")
        else:
            # Stored as "YYYY-MM-DD HH:MM:SS.ffffff": the first 23 characters are the text.
            value, unset = func.substr(col, 1, 23), literal("")
        return func.coalesce(value, unset) if spec.nullable else value

    def ordered(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """Text compared by code point, as Python does (PostgreSQL would use the locale)."""
        return expr.collate("C") if self.postgres else expr

    # -- conditions -----------------------------------------------------------------

    def compile(self, node: Filter, depth: int = 0) -> ColumnElement[bool]:
        if depth > MAX_FILTER_DEPTH:
            raise invalid_filter(f"The filter is nested more than {MAX_FILTER_DEPTH} levels deep.")
        if isinstance(node, Junction):
            if node.op not in ("and", "or") or not node.terms:
                raise invalid_filter("A filter junction must be AND or OR over some terms.")
            if node.op == "or" and (listed := self.one_of(node.terms)) is not None:
                return listed
            parts = [self.compile(term, depth + 1) for term in node.terms]
            return and_(*parts) if node.op == "and" else or_(*parts)
        self.conditions += 1
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise invalid_filter(f"The filter has more than {MAX_FILTER_CONDITIONS} conditions.")
        return self.condition(node)

    def one_of(self, terms: tuple[Filter, ...]) -> ColumnElement[bool] | None:
        """``f = 'a' || f = 'b'`` on a field with a closed set of values, as one indexed
        ``f IN ('a', 'b')`` (None when the terms are anything else)."""
        names = set()
        values: list[str] = []
        for term in terms:
            if not (
                isinstance(term, Condition)
                and term.op == "="
                and isinstance(term.left, FieldRef)
                and isinstance(term.right, Value)
                and isinstance(term.right.value, str)
            ):
                return None
            names.add(term.left.name)
            values.append(term.right.value)
        spec = self.fields.get(names.pop()) if len(names) == 1 else None
        if spec is None or not spec.choices:
            return None
        self.conditions += len(terms)
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise invalid_filter(f"The filter has more than {MAX_FILTER_CONDITIONS} conditions.")
        known = [v for v in values if v in spec.choices]
        return spec.column.in_(known) if known else false()

    def condition(self, node: Condition) -> ColumnElement[bool]:
        if node.op not in OPERATORS:
            raise invalid_filter(f"Unknown filter operator {node.op!r}.")
        left, op, right = node.left, node.op, node.right
        if not isinstance(left, FieldRef) and not isinstance(right, FieldRef):
            raise invalid_filter("Each filter condition must reference a field.")
        if op in ("~", "!~"):
            if not isinstance(left, FieldRef) or isinstance(right, FieldRef):
                raise invalid_filter("The left side of ~ must be a field and the right a value.")
            spec = self.spec(left.name)
            pattern = right
            if spec.multi is not None:
                found = spec.multi.any(self.like(FieldSpec(spec.multi.value), pattern))
                return found if op == "~" else not_(found)
            if spec.lookup is not None:
                inner = self.like(FieldSpec(spec.lookup.remote), pattern)
                key = self.ordered(spec.lookup.key) if spec.free_text else spec.lookup.key
                found = key.in_(select(spec.lookup.remote_key).where(inner))
                return found if op == "~" else not_(found)
            if spec.choices:
                # A closed set of values: the matching ones, as an indexed IN.
                regex = like_regex(self.pattern_text(pattern))
                hits = [c for c in spec.choices if regex.fullmatch(c.lower())]
                picked = hits if op == "~" else [c for c in spec.choices if c not in hits]
                return spec.column.in_(picked) if picked else false()
            hit = self.like(spec, pattern)
            return hit if op == "~" else not_(hit)
        if not isinstance(left, FieldRef):
            left, right, op = right, left, _MIRROR[op]
        assert isinstance(left, FieldRef)
        spec = self.spec(left.name)
        if isinstance(right, FieldRef):
            other = self.spec(right.name)
            if spec.multi is not None or other.multi is not None:
                raise invalid_filter("A list field is compared only with values.")
            return self.field_vs_field(spec, op, other)
        if spec.multi is not None:
            return self.multi_vs_value(spec.multi, op, self.constant(right))
        return self.field_vs_value(spec, op, self.constant(right))

    def multi_vs_value(self, multi: Multi, op: str, value: str | float) -> ColumnElement[bool]:
        if value == "":
            return {"=": not_(multi.any(None)), "!=": multi.any(None)}.get(op, false())
        if op == "!=":
            return not_(multi.any(self.field_vs_value(FieldSpec(multi.value), "=", value)))
        return multi.any(self.field_vs_value(FieldSpec(multi.value), op, value))

    def constant(self, operand: Operand) -> str | float:
        """A constant as the record semantics see it: None → "", bool → number, @now → text."""
        if isinstance(operand, NowRef):
            return self.now.strftime("%Y-%m-%d %H:%M:%S.") + f"{self.now.microsecond // 1000:03d}Z"
        assert isinstance(operand, Value)
        value = operand.value
        if value is None:
            return ""
        if isinstance(value, bool):
            return float(value)
        return value

    def pattern_text(self, pattern: Operand) -> str:
        raw = self.constant(pattern) if not isinstance(pattern, Value) else pattern.value
        return "" if raw is None else str(raw)

    def like(self, spec: FieldSpec, pattern: Operand) -> ColumnElement[bool]:
        text = self.pattern_text(pattern)
        return func.lower(self.text_of(spec)).like(like_pattern(text), escape=LIKE_ESCAPE)

    def field_vs_field(self, a: FieldSpec, op: str, b: FieldSpec) -> ColumnElement[bool]:
        if a.kind == NUMBER and b.kind == NUMBER:
            return _apply(func.coalesce(a.column, 0.0), op, func.coalesce(b.column, 0.0))
        if NUMBER in (a.kind, b.kind):
            return _incomparable(op)
        if a.kind == DATE and b.kind == DATE:
            return _apply(self.instant_of(a), op, self.instant_of(b))
        # Formatted dates order like the instants they name, at the records' precision.
        return _apply(self.ordered(self.text_of(a)), op, self.ordered(self.text_of(b)))

    def field_vs_value(self, spec: FieldSpec, op: str, value: str | float) -> ColumnElement[bool]:
        if spec.kind == NUMBER:
            number = _as_number(value)
            if number is None:
                return _incomparable(op)
            # A column without NULLs is compared bare, so that its index serves ranges.
            col = func.coalesce(spec.column, 0.0) if spec.nullable else self.plain(spec.column)
            return _apply(col, op, literal(number))
        if isinstance(value, float):
            # Text fields here hold ids, names and states, dates are never numbers: a
            # number compares with none of them (only "!=" holds).
            return _incomparable(op)
        if spec.kind == DATE:
            return self.date_vs_text(self.plain(spec.column), op, value)
        if op in ("=", "!=") and spec.choices and value not in spec.choices:
            return _incomparable(op)  # no row holds it: nothing to scan for
        if op == "!=" and spec.choices and not spec.nullable:
            # Every other value, as an indexed IN: a count then reads the index alone
            # instead of every row (4.8 ms against 3.3 ms for 10,000 jobs on PostgreSQL).
            return spec.column.in_([c for c in spec.choices if c != value])
        if op in ("=", "!="):
            col = self.ordered(spec.column) if spec.free_text else spec.column
            hit = text_equal(spec, col, value)
            return hit if op == "=" else not_(hit)
        return _apply(self.ordered(self.text_of(spec)), op, self.ordered(literal(value)))

    def date_vs_text(self, col: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
        if value == "":
            # An unset date is "", a set one sorts after "".
            return {
                "=": col.is_(None),
                "!=": col.is_not(None),
                ">": col.is_not(None),
                ">=": true(),
                "<": false(),
                "<=": col.is_(None),
            }[op]
        instant = parse_instant(value)
        if instant is None:
            spec = FieldSpec(col, DATE)
            return _apply(self.ordered(self.text_of(spec)), op, self.ordered(literal(value)))
        # Records show milliseconds: compare the truncated instant, as index-friendly ranges.
        floor = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
        ceil = floor if floor == instant else floor + _MS
        set_and = {
            "=": and_(col >= floor, col < floor + _MS) if floor == instant else false(),
            ">": col >= floor + _MS,
            ">=": col >= ceil,
        }
        if op in set_and:
            return set_and[op]
        # "" (unset) is less than and unequal to any date.
        unset_or = {
            "!=": or_(col < floor, col >= floor + _MS) if floor == instant else true(),
            "<": col < ceil,
            "<=": col < floor + _MS,
        }[op]
        return or_(col.is_(None), unset_or) if op != "!=" or floor == instant else unset_or


def text_equal(spec: FieldSpec, col: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    """``field = value`` on the column as its index holds it (no COALESCE), so that the
    index serves it; NULL, when the column allows it, equals ""."""
    if not spec.nullable:
        return col == value
    if value == "":
        return or_(col.is_(None), col == "")
    return and_(col.is_not(None), col == value)


def _as_number(value: str | float) -> float | None:
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def _incomparable(op: str) -> ColumnElement[bool]:
    return true() if op == "!=" else false()


_APPLY: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _apply(a: Any, op: str, b: Any) -> ColumnElement[bool]:
    return _APPLY[op](a, b)


def like_pattern(text: str) -> str:
    """The SQL LIKE pattern (escape ``\\``) of a ``~`` operand, lower-cased.

    Only ``%`` is a wildcard; ``_`` and the escape character are literal. A pattern
    without ``%`` matches anywhere (it is wrapped in ``%``).
    """
    if "%" not in text:
        text = f"%{text}%"
    pieces = text.lower().split("%")
    escaped = [
        p.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("_", LIKE_ESCAPE + "_") for p in pieces
    ]
    return "%".join(escaped)


def like_regex(text: str) -> re.Pattern[str]:
    """The ``~`` operand as a regular expression over lower-cased text (the SQL LIKE of
    :func:`like_pattern`, for values known in advance)."""
    if "%" not in text:
        text = f"%{text}%"
    return re.compile(".*".join(re.escape(p) for p in text.lower().split("%")), re.DOTALL)


def compile_filter(
    node: Filter | None, fields: Mapping[str, FieldSpec], *, postgres: bool, now: datetime
) -> ColumnElement[bool] | None:
    """The WHERE clause of ``node`` over ``fields`` (None for no filter).

    Raises:
        InvalidArgumentError: ``INVALID_FILTER`` for unknown fields or operators, a value on
            the left of ``~``, or a filter deeper or larger than allowed.
    """
    if node is None:
        return None
    return _Compiler(fields, postgres, now).compile(node)


def compile_order(
    keys: tuple[SortKey, ...],
    fields: Mapping[str, FieldSpec],
    tie_breakers: Sequence[ColumnElement[Any]],
    *,
    postgres: bool,
) -> list[UnaryExpression[Any]]:
    """ORDER BY for ``keys``: empty values first ascending (last descending), text by code
    point, ties broken by ``tie_breakers`` (unique last) in the direction of the last key,
    so that one index ``(key, *tie_breakers)`` scanned in either direction serves it."""
    if len(keys) > MAX_SORT_KEYS:
        raise invalid_filter(f"At most {MAX_SORT_KEYS} sort fields are allowed.")
    compiler = _Compiler(fields, postgres, datetime.now(UTC))
    order: list[UnaryExpression[Any]] = []
    used: list[ColumnElement[Any]] = []
    for key in keys:
        spec = fields.get(key.field)
        if spec is None:
            raise invalid_filter(f"Unknown sort field {key.field!r}.")
        if spec.constant or spec.multi is not None:
            continue
        expr: ColumnElement[Any] = spec.column
        used.append(expr)
        if spec.kind == TEXT and spec.free_text:
            # Ids and states sort alike in every collation; names by code point.
            expr = compiler.ordered(expr)
        if not spec.nullable:
            # No NULLS FIRST/LAST here: PostgreSQL would then not use the column's index.
            order.append(expr.desc() if key.descending else expr.asc())
        else:
            order.append(expr.desc().nulls_last() if key.descending else expr.asc().nulls_first())
    descending = bool(keys) and keys[-1].descending
    if any(tie_breakers[-1].compare(u) for u in used):
        return order  # sorted by the unique key already: nothing is left to break
    for tie in tie_breakers:
        if not any(tie.compare(u) for u in used):
            order.append(tie.desc() if descending else tie.asc())
    return order


def _needs_scan(node: Filter, fields: Mapping[str, FieldSpec]) -> bool:
    """Whether a filter term holds a condition no index answers (free-text ``~``, or a
    field compared with another field)."""
    if isinstance(node, Junction):
        return any(_needs_scan(t, fields) for t in node.terms)
    left, right = node.left, node.right
    if isinstance(left, FieldRef) and isinstance(right, FieldRef):
        return True
    if node.op in ("~", "!~") and isinstance(left, FieldRef):
        spec = fields.get(left.name)
        if spec is None or spec.choices or spec.constant:
            return False
        return spec.lookup is None and spec.multi is None
    return False


def _split(
    node: Filter | None, fields: Mapping[str, FieldSpec]
) -> tuple[list[Filter], list[Filter]]:
    """The top-level AND terms an index answers, and those that need a scan."""
    if node is None:
        return [], []
    terms = list(node.terms) if isinstance(node, Junction) and node.op == "and" else [node]
    indexed = [t for t in terms if not _needs_scan(t, fields)]
    scanned = [t for t in terms if _needs_scan(t, fields)]
    return indexed, scanned


def run_listing(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    scope: Sequence[ColumnElement[bool]],
    query: ListQuery,
    fields: Mapping[str, FieldSpec],
    *,
    tie_breakers: Sequence[ColumnElement[Any]],
    default_sort: tuple[SortKey, ...],
    now: datetime,
) -> tuple[list[dict[str, Any]], Total | None]:
    """One page of ``columns`` within ``scope`` (e.g. the owner's rows) matching ``query``,
    and the number of matches (at most :data:`COUNT_CAP`, or :data:`READ_COUNT_CAP` when
    counting reads rows, and then marked capped when more match) unless the query skips
    counting.

    The page and the count are two statements on ``conn``, each bounded: index range
    scans for what an index answers, at most :data:`SCAN_BUDGET` rows for the rest (see
    the module docstring).
    """
    postgres = conn.dialect.name == "postgresql"
    compiler = _Compiler(fields, postgres, now)
    root = query.filter
    if isinstance(root, Junction) and (root.op not in ("and", "or") or not root.terms):
        raise invalid_filter("A filter junction must be AND or OR over some terms.")
    # Terms of a top-level AND sit one level down.
    depth = 1 if isinstance(root, Junction) and root.op == "and" else 0
    indexed, scanned = _split(root, fields)
    conditions = list(scope) + [compiler.compile(t, depth) for t in indexed]
    order = compile_order(query.sort or default_sort, fields, tie_breakers, postgres=postgres)
    table = tie_breakers[-1].table
    cap = _count_cap(table, conditions)
    if scanned:
        # The candidates an index yields, in order, at most SCAN_BUDGET of them with the
        # columns the fields read (never the large payloads); the conditions no index
        # answers and the order are evaluated on those, so that the planner starts from
        # them (a sort of SCAN_BUDGET rows) rather than from the whole table.
        # Only the columns the remaining conditions and the order read: an index holding
        # them all (e.g. ``id ~`` under the (owner, created, id) order) then yields the
        # window without reading a row.
        key = tie_breakers[-1]
        unscanned = [compiler.compile(t, depth) for t in scanned]
        read = [e for x in (*unscanned, *order) for e in iterate(x)]
        narrow = [c for c in table.c if c is key or any(c is e for e in read)]
        window = select(*narrow).where(*conditions).order_by(*order).limit(SCAN_BUDGET).subquery()
        adapt = ClauseAdapter(window).traverse
        rest = [adapt(x) for x in unscanned]
        # The page is cut from the window's narrow rows, and only its rows are joined to
        # the table: joining first would read every matching row in full (payloads
        # included) for the count and the sort, thousands of row reads for 30 rows.
        hits = (
            select(*window.c)
            .where(*rest)
            .order_by(*[adapt(o) for o in order])
            .offset(query.offset)
            .limit(query.limit)
        )
        if query.count_total:
            # The window once: the page's rows carry the number of matches in it (the
            # window function runs before the page is cut).
            hits = hits.add_columns(func.count().over().label(_TOTAL))
        cut = hits.subquery()
        page = (
            select(*columns, *([cut.c[_TOTAL]] if query.count_total else []))
            .select_from(cut.join(table, key == cut.c[key.name]))
            .order_by(*[ClauseAdapter(cut).traverse(o) for o in order])
        )
        counted = select(func.count()).select_from(window).where(*rest)
    else:
        page = (
            select(*columns)
            .where(*conditions)
            .order_by(*order)
            .offset(query.offset)
            .limit(query.limit)
        )
        # One row past the cap: a count above the cap is capped, one equal to it exact.
        capped = select(literal(1)).select_from(table).where(*conditions).limit(cap + 1)
        counted = select(func.count()).select_from(capped.subquery())
    keys = query.sort or default_sort
    leading = None if scanned else _leading_key(keys, fields, table, tie_breakers)
    # SQLite has no statistics on value ranges: given a range on one column and an order
    # on another, it reads every row in the range through that column's index and sorts
    # them all, however many match. When many match (counted first, as far as
    # SCAN_BUDGET), walking the order's index and filtering finds a page after a few rows
    # per match; when few match, the range's index is best and the sort small.
    ranged = [] if scanned or postgres else _ranged_columns(indexed, fields, order)
    with work_budget(conn):
        total: Total | None = None
        if ranged:
            # The probe also decides the plan: it counts at least as far as SCAN_BUDGET.
            reach = max(cap + 1, SCAN_BUDGET) if query.count_total else SCAN_BUDGET
            probe = select(literal(1)).select_from(table).where(*conditions).limit(reach)
            found = int(
                conn.execute(select(func.count()).select_from(probe.subquery())).scalar_one()
            )
            total = _capped(found, cap) if query.count_total else None
            if found >= SCAN_BUDGET:
                plain = _Compiler(fields, postgres, now, unindexed=ranged)
                conditions = list(scope) + [plain.compile(t, depth) for t in indexed]
                page = (
                    select(*columns)
                    .where(*conditions)
                    .order_by(*order)
                    .offset(query.offset)
                    .limit(query.limit)
                )
        rows: list[dict[str, Any]]
        if leading is None:
            rows = _dicts(conn.execute(page))
        else:
            walk = _GroupWalk(conn, compiler, columns, conditions, tie_breakers, leading)
            rows = walk.page(keys, fields, query.offset, query.limit)
        if scanned and query.count_total and rows:
            # Every match within the window (at most SCAN_BUDGET rows): exact for the
            # listing, which searches that window only.
            total = Total(int(rows[0][_TOTAL]))
            for row in rows:
                del row[_TOTAL]
        elif query.count_total and not ranged:
            if len(rows) < query.limit and (rows or not query.offset):
                # A page that is not full is the last: the matches are those before it
                # and on it (capped as a count would be).
                total = _capped(query.offset + len(rows), cap)
            else:
                total = _capped(int(conn.execute(counted).scalar_one()), cap)
    return rows, total


_TOTAL = "_qpi_listing_total"


def _capped(found: int, cap: int) -> Total:
    """The total of `found` matches reported up to `cap`: capped when more were found (a
    count that read up to ``cap + 1`` rows, or the exact count of a last page)."""
    return Total(min(found, cap), capped=found > cap)


def _count_cap(table: Any, conditions: Sequence[ColumnElement[bool]]) -> int:
    """How far a count of the rows of `table` meeting `conditions` goes: :data:`COUNT_CAP`
    when one of the table's indexes holds every column of it they read (an index-only
    count, ~0.1 µs per match), :data:`READ_COUNT_CAP` when each match costs a row read."""
    read = {
        element.name
        for condition in conditions
        for element in iterate(condition)
        if isinstance(element, Column) and element.table is table
    }
    for index in table.indexes:
        if read <= {column.name for column in index.columns}:
            return COUNT_CAP
    return READ_COUNT_CAP


def _dicts(result: CursorResult[Any]) -> list[dict[str, Any]]:
    """The rows of `result` as plain dicts: SQLAlchemy's ``RowMapping`` builds a key view
    on every ``items()``/``**`` (a quarter of a 200-row page's server time, profiled)."""
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def _ranged_columns(
    terms: Sequence[Filter],
    fields: Mapping[str, FieldSpec],
    order: Sequence[UnaryExpression[Any]],
) -> list[ColumnElement[Any]]:
    """The date and number columns that `terms` compare with values other than by
    equality, except the column the order starts with (its index serves both)."""
    leading = list(iterate(order[0])) if order else []
    found: list[ColumnElement[Any]] = []

    def visit(node: Filter) -> None:
        if isinstance(node, Junction):
            for term in node.terms:
                visit(term)
            return
        for side in (node.left, node.right):
            if not isinstance(side, FieldRef) or node.op in ("=", "~", "!~"):
                continue
            spec = fields.get(side.name)
            if spec is None or spec.kind not in (DATE, NUMBER) or spec.multi is not None:
                continue
            column = spec.column
            if any(column is element for element in leading):
                continue
            if not any(column is c for c in found):
                found.append(column)

    for term in terms:
        visit(term)
    return found


def _leading_key(
    keys: Sequence[SortKey],
    fields: Mapping[str, FieldSpec],
    table: Any,
    tie_breakers: Sequence[ColumnElement[Any]],
) -> tuple[SortKey, FieldSpec] | None:
    """The first sort key of a sort on two or more fields when an index leads with its
    column (then a page is walked group by group, see :class:`_GroupWalk`), else None.

    Not for a first field that breaks ties (creation time, id): its groups are single
    rows, which the database's incremental sort over that index orders at once."""
    effective = [
        k
        for k in keys
        if k.field in fields and not fields[k.field].constant and fields[k.field].multi is None
    ]
    if len(effective) < 2:
        return None
    first = effective[0]
    spec = fields[first.field]
    column = spec.column
    if getattr(column, "table", None) is not table or any(t is column for t in tie_breakers):
        return None
    for index in getattr(table, "indexes", ()):
        if any(c is column for c in list(index.columns)[:2]):
            return first, spec
    return None


class _GroupWalk:
    """One page of a sort on two or more fields without sorting every match.

    The rows are ordered by the first field, then the others. The first field's index
    gives, in one range scan, the first field's values at the page's positions (the same
    values whatever the later fields: they only order rows that share the first one). The
    page is then those *groups* of equal first values: the first group from where the page
    starts in it, every group between the first and the last whole (fewer rows than the
    page, sorted fully), and the last group's first rows. A group is read by equality on
    the first field, so the index ``(field, created, id)`` serves it in order when the
    later fields are the creation time (e.g. ``qpu_name,-created``); otherwise the database
    sorts that one group (bounded by the group's size and the work budget), never all
    matches. Exactly the rows and order of the full sort.
    """

    def __init__(
        self,
        conn: Connection,
        compiler: _Compiler,
        columns: Sequence[ColumnElement[Any]],
        conditions: Sequence[ColumnElement[bool]],
        tie_breakers: Sequence[ColumnElement[Any]],
        leading: tuple[SortKey, FieldSpec],
    ) -> None:
        self.conn = conn
        self.columns = columns
        self.conditions = list(conditions)
        self.tie_breakers = tie_breakers
        self.key, self.spec = leading
        column = self.spec.column
        free = self.spec.kind == TEXT and self.spec.free_text
        self.column = column
        self.compared = compiler.ordered(column) if free else column
        self.postgres = compiler.postgres

    def _equal(self, value: Any) -> ColumnElement[bool]:
        return self.column.is_(None) if value is None else self.compared == value

    def _before(self, value: Any) -> ColumnElement[bool]:
        """Rows whose first field sorts before `value` (empty values first ascending,
        last descending, as :func:`compile_order`)."""
        col, nullable = self.column, self.spec.nullable
        if not self.key.descending:
            if value is None:
                return false()
            smaller = _apply(self.compared, "<", value)
            return or_(col.is_(None), smaller) if nullable else smaller
        if value is None:
            return col.is_not(None)
        return _apply(self.compared, ">", value)

    def _after(self, value: Any) -> ColumnElement[bool]:
        col, nullable = self.column, self.spec.nullable
        if not self.key.descending:
            if value is None:
                return col.is_not(None)
            return _apply(self.compared, ">", value)
        if value is None:
            return false()
        smaller = _apply(self.compared, "<", value)
        return or_(col.is_(None), smaller) if nullable else smaller

    def page(
        self, keys: Sequence[SortKey], fields: Mapping[str, FieldSpec], offset: int, limit: int
    ) -> list[dict[str, Any]]:
        postgres, ties = self.postgres, self.tie_breakers
        first_order = compile_order((self.key,), fields, ties, postgres=postgres)
        order = compile_order(tuple(keys), fields, ties, postgres=postgres)
        within = order[1:]  # the first term orders by the first field, equal in a group
        probe = (
            select(self.column)
            .where(*self.conditions)
            .order_by(*first_order)
            .offset(offset)
            .limit(limit)
        )
        values = list(self.conn.execute(probe).scalars().all())
        if not values:
            return []
        groups: list[tuple[Any, int]] = []
        for value in values:
            if groups and groups[-1][0] == value:
                groups[-1] = (value, groups[-1][1] + 1)
            else:
                groups.append((value, 1))
        skip = 0
        if offset:
            earlier = (
                select(literal(1))
                .where(*self.conditions, self._before(groups[0][0]))
                .limit(offset)
                .subquery()
            )
            counted = select(func.count()).select_from(earlier)
            skip = offset - int(self.conn.execute(counted).scalar_one())
        rows = self._rows([self._equal(groups[0][0])], within, skip, groups[0][1])
        if len(groups) > 2:
            between = [self._after(groups[0][0]), self._before(groups[-1][0])]
            rows += self._rows(between, order, 0, sum(n for _, n in groups[1:-1]))
        if len(groups) > 1:
            rows += self._rows([self._equal(groups[-1][0])], within, 0, groups[-1][1])
        return rows

    def _rows(
        self,
        where: Sequence[ColumnElement[bool]],
        order: Sequence[UnaryExpression[Any]],
        offset: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        stmt = select(*self.columns).where(*self.conditions, *where).order_by(*order)
        return _dicts(self.conn.execute(stmt.offset(offset).limit(limit)))


@contextmanager
def work_budget(conn: Connection) -> Iterator[None]:
    """Cancel the statements run inside after :data:`WORK_BUDGET_SECONDS` (SQLite: a
    progress handler; PostgreSQL: the transaction's ``statement_timeout``) and refuse the
    query as INVALID_FILTER."""
    seconds = WORK_BUDGET_SECONDS
    raw: Any = None
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")
    else:
        raw = conn.connection.driver_connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 20_000)
    try:
        yield
    except DBAPIError as exc:
        cancelled = "interrupted" in str(exc.orig) or "statement timeout" in str(exc.orig)
        if not cancelled:
            raise
        raise invalid_filter(
            "The filter needs more work than one page may take; add a condition on an "
            "indexed field (status, dates, qpu_target) or narrow the range."
        ) from exc
    finally:
        if raw is not None:
            raw.set_progress_handler(None, 0)
