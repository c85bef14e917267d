"""``qpi.v1.FilterExpression`` / ``SortField`` → :mod:`qpi.server.domain.listing`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.listing import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    MAX_SORT_KEYS,
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
from qpi.server.services.paging import next_token, page_window
from qpi.v1 import admin_service_pb2, list_query_pb2

_OPERATORS = {
    list_query_pb2.FILTER_OPERATOR_EQUAL: "=",
    list_query_pb2.FILTER_OPERATOR_NOT_EQUAL: "!=",
    list_query_pb2.FILTER_OPERATOR_LESS: "<",
    list_query_pb2.FILTER_OPERATOR_LESS_EQUAL: "<=",
    list_query_pb2.FILTER_OPERATOR_GREATER: ">",
    list_query_pb2.FILTER_OPERATOR_GREATER_EQUAL: ">=",
    list_query_pb2.FILTER_OPERATOR_LIKE: "~",
    list_query_pb2.FILTER_OPERATOR_NOT_LIKE: "!~",
}
MAX_TEXT = 4096


def _invalid(message: str, field: str = "filter") -> InvalidArgumentError:
    return InvalidArgumentError("INVALID_FILTER", message, field=field)


def _operand(msg: list_query_pb2.FilterOperand) -> Operand:
    kind = msg.WhichOneof("kind")
    if kind == "field":
        return FieldRef(msg.field)
    if kind == "text":
        if len(msg.text) > MAX_TEXT:
            raise _invalid(f"A filter value is longer than {MAX_TEXT} characters.")
        return Value(msg.text)
    if kind == "number":
        return Value(msg.number)
    if kind == "flag":
        return Value(msg.flag)
    if kind == "null_value":
        return Value(None)
    if kind == "now":
        return NowRef()
    raise _invalid("A filter operand is empty.")


class _Reader:
    def __init__(self) -> None:
        self.conditions = 0

    def read(self, msg: list_query_pb2.FilterExpression, depth: int) -> Filter:
        if depth > MAX_FILTER_DEPTH:
            raise _invalid(f"The filter is nested more than {MAX_FILTER_DEPTH} levels deep.")
        kind = msg.WhichOneof("kind")
        if kind == "condition":
            self.conditions += 1
            if self.conditions > MAX_FILTER_CONDITIONS:
                raise _invalid(f"The filter has more than {MAX_FILTER_CONDITIONS} conditions.")
            cond = msg.condition
            op = _OPERATORS.get(cond.op)
            if op is None:
                raise _invalid("A filter condition has no operator.")
            return Condition(_operand(cond.left), op, _operand(cond.right))
        if kind in ("all_of", "any_of"):
            terms = msg.all_of.terms if kind == "all_of" else msg.any_of.terms
            if not terms:
                raise _invalid("A filter junction has no terms.")
            if len(terms) > MAX_FILTER_CONDITIONS:
                raise _invalid(f"The filter has more than {MAX_FILTER_CONDITIONS} conditions.")
            parts = tuple(self.read(t, depth + 1) for t in terms)
            return Junction("and" if kind == "all_of" else "or", parts)
        raise _invalid("The filter expression is empty.")


def filter_from_proto(msg: list_query_pb2.FilterExpression, present: bool) -> Filter | None:
    """The domain filter of a request's ``filter`` field (None when absent)."""
    if not present:
        return None
    return _Reader().read(msg, 0)


def sort_from_proto(fields: Sequence[list_query_pb2.SortField]) -> tuple[SortKey, ...]:
    """The domain sort keys of a request's ``sort`` field."""
    if len(fields) > MAX_SORT_KEYS:
        raise _invalid(f"At most {MAX_SORT_KEYS} sort fields are allowed.", "sort")
    return tuple(SortKey(f.field, f.descending) for f in fields)


def conjunction(terms: Sequence[Filter]) -> Filter | None:
    """AND of `terms` (None for none)."""
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else Junction("and", tuple(terms))


def telemetry_query(request: admin_service_pb2.ListTelemetryEventsRequest) -> tuple[ListQuery, str]:
    """The domain query of a ListTelemetryEvents request (type and driver folded into the
    filter), and a key identifying it for page tokens."""
    terms: list[Filter] = []
    if request.type:
        terms.append(Condition(FieldRef("type"), "=", Value(request.type)))
    if request.driver_id:
        terms.append(Condition(FieldRef("driver"), "=", Value(request.driver_id)))
    extra = filter_from_proto(request.filter, request.HasField("filter"))
    if extra is not None:
        terms.append(extra)
    where = conjunction(terms)
    sort = sort_from_proto(request.sort)
    query = ListQuery(filter=where, sort=sort, count_total=not request.skip_total)
    return query, f"tel|{where!r}|{sort!r}|{request.skip_total}"


def request_query(request: Any, terms: Sequence[Filter] = ()) -> tuple[ListQuery, str]:
    """The domain query of a list request carrying ``filter``, ``sort`` and
    ``skip_total`` (its own narrowing fields given as `terms`), and a key identifying the
    query for page tokens."""
    extra = filter_from_proto(request.filter, request.HasField("filter"))
    where = conjunction([*terms, *([extra] if extra is not None else [])])
    sort = sort_from_proto(request.sort)
    query = ListQuery(filter=where, sort=sort, count_total=not request.skip_total)
    return query, f"{where!r}|{sort!r}|{request.skip_total}"


def page_end(
    offset: int, limit: int, returned: int, total: Total | None, key: str
) -> tuple[int, bool, str]:
    """A list response's ``total_size``, ``total_size_capped`` and ``next_page_token`` for
    `returned` rows of the page (`offset`, `limit`) of the query `key`, counted as `total`
    (None: not counted)."""
    if total is None or total.capped:
        # Without a count, or beyond a capped one, a full page means there may be more.
        reached = offset + returned + (returned == limit)
        known = reached if total is None else max(total.count, reached)
    else:
        known = total.count
    token = next_token(offset, limit, returned, known, key)
    if total is None:
        return -1, False, token
    return total.count, total.capped, token


def page_of(
    request: Any, query: ListQuery, key: str
) -> tuple[ListQuery, Callable[[int, Total | None], tuple[int, bool, str]]]:
    """The query narrowed to the request's page window, and a function of (rows returned,
    total or None) giving the response's ``total_size``, ``total_size_capped`` and
    ``next_page_token`` (see :func:`page_end`)."""
    offset, limit = page_window(request.page_size, request.page_token, request.skip, key)

    def finish(returned: int, total: Total | None) -> tuple[int, bool, str]:
        return page_end(offset, limit, returned, total, key)

    return replace(query, offset=offset, limit=limit), finish
