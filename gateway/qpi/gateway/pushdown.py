"""Parsed filters and sorts → ``qpi.v1`` list-query messages, so the server runs them in SQL."""

from __future__ import annotations

from collections.abc import Sequence

from qpi.gateway import filters
from qpi.gateway.listing import SortKey
from qpi.v1 import list_query_pb2

_OPERATORS = {
    "=": list_query_pb2.FILTER_OPERATOR_EQUAL,
    "!=": list_query_pb2.FILTER_OPERATOR_NOT_EQUAL,
    "<": list_query_pb2.FILTER_OPERATOR_LESS,
    "<=": list_query_pb2.FILTER_OPERATOR_LESS_EQUAL,
    ">": list_query_pb2.FILTER_OPERATOR_GREATER,
    ">=": list_query_pb2.FILTER_OPERATOR_GREATER_EQUAL,
    "~": list_query_pb2.FILTER_OPERATOR_LIKE,
    "!~": list_query_pb2.FILTER_OPERATOR_NOT_LIKE,
}


def _operand(operand: filters.Operand) -> list_query_pb2.FilterOperand:
    if isinstance(operand, filters.Field):
        return list_query_pb2.FilterOperand(field=operand.name)
    if isinstance(operand, filters.Now):
        return list_query_pb2.FilterOperand(now=True)
    value = operand.value
    if value is None:
        return list_query_pb2.FilterOperand(null_value=True)
    if isinstance(value, bool):
        return list_query_pb2.FilterOperand(flag=value)
    if isinstance(value, str):
        return list_query_pb2.FilterOperand(text=value)
    return list_query_pb2.FilterOperand(number=float(value))


def filter_message(node: filters.Node) -> list_query_pb2.FilterExpression:
    """The wire form of a parsed filter."""
    if isinstance(node, filters.BoolOp):
        terms = list_query_pb2.FilterTerms(terms=[filter_message(t) for t in node.terms])
        if node.op == "and":
            return list_query_pb2.FilterExpression(all_of=terms)
        return list_query_pb2.FilterExpression(any_of=terms)
    condition = list_query_pb2.FilterCondition(
        left=_operand(node.left), op=_OPERATORS[node.op], right=_operand(node.right)
    )
    return list_query_pb2.FilterExpression(condition=condition)


def sort_messages(keys: Sequence[SortKey]) -> list[list_query_pb2.SortField]:
    """The wire form of parsed sort keys."""
    return [list_query_pb2.SortField(field=k.field, descending=k.descending) for k in keys]
