"""The collection interface and a validating reader for loosely typed JSON bodies."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf import timestamp_pb2

from qpi.gateway import errors, filters
from qpi.gateway.context import Ctx
from qpi.gateway.listing import MAX_PER_PAGE, SortKey, page_of
from qpi.gateway.pushdown import filter_message, sort_messages
from qpi.gateway.timefmt import DateFormatError, to_timestamp

INT32_MAX = 2**31 - 1
MAX_TEXT = 5000


class BodyReader:
    """Reads typed values out of a JSON object, collecting per-field errors.

    Call :meth:`check` after reading: it raises one 400 envelope naming every bad field.
    """

    def __init__(self, body: Mapping[str, Any], action: str) -> None:
        """Wrap ``body``; ``action`` is "create" or "update" (used in the error message)."""
        self.body = body
        self.action = action
        self.errors: dict[str, Any] = {}

    def has(self, key: str) -> bool:
        """Whether the body contains ``key``."""
        return key in self.body

    def fail(self, key: str, message: str, code: str = "validation_invalid_value") -> None:
        """Record an error for field ``key``; the first error per field wins."""
        self.errors.setdefault(key, errors.field_error(code, message))

    def text(self, key: str, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
        """A string value (None when absent or invalid)."""
        value = self.body.get(key)
        if value is None:
            if required:
                self.fail(key, "Cannot be blank.", "validation_required")
            return None
        if not isinstance(value, str):
            self.fail(key, "Must be a string.")
            return None
        if required and not value.strip():
            self.fail(key, "Cannot be blank.", "validation_required")
            return None
        if len(value) > max_len:
            self.fail(key, f"Must be at most {max_len} characters.")
            return None
        return value

    def number(self, key: str, required: bool = False, minimum: float = 0.0) -> float | None:
        """A finite number ≥ ``minimum``."""
        value = self.body.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, "Cannot be blank.", "validation_required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, "Must be a number.")
            return None
        if not math.isfinite(value) or value < minimum or abs(value) > 1e15:
            self.fail(key, f"Must be a finite number no less than {minimum:g}.")
            return None
        return float(value)

    def int32(self, key: str) -> int | None:
        """A non-negative integer that fits in int32."""
        number = self.number(key)
        if number is None:
            return None
        if not number.is_integer() or number > INT32_MAX:
            self.fail(key, "Must be a whole number.")
            return None
        return int(number)

    def flag(self, key: str) -> bool | None:
        """A boolean."""
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(key, "Must be a boolean.")
            return None
        return value

    def date(self, key: str, required: bool = False) -> timestamp_pb2.Timestamp | None:
        """A date string; ``""`` (or absent) gives None."""
        value = self.text(key, required=required, max_len=64)
        if not value:
            return None
        try:
            return to_timestamp(value)
        except DateFormatError:
            self.fail(key, "Must be a valid date.")
            return None

    def id_list(self, key: str) -> list[str] | None:
        """A list of ids (a single id string is accepted as a one-element list)."""
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "Must be a list of ids.")
            return None
        return [v for v in value if v]

    def check(self) -> None:
        """Raise the collected field errors as one 400 envelope, if any.

        Raises:
            errors.ApiError: When any field was invalid.
        """
        if self.errors:
            raise errors.ApiError(400, f"Failed to {self.action} record.", dict(self.errors))


async def server_page(
    ctx: Ctx,
    method: Callable[..., Any],
    request: Any,
    items_field: str,
    to_record: Callable[[Any], dict[str, Any]],
    query: filters.Node | None,
    keys: Sequence[SortKey],
    page: int,
    per_page: int,
    count_total: bool,
) -> dict[str, Any]:
    """One page of a collection filtered, sorted, paged and counted by the server in SQL:
    ``request`` (a List* request with ``filter``, ``sort``, ``skip`` and ``skip_total``)
    is completed with the query and the page window and sent through ``method``."""
    page, per_page = max(page, 1), min(max(per_page, 1), MAX_PER_PAGE)
    request.skip = (page - 1) * per_page
    request.page_size = per_page
    request.skip_total = not count_total
    request.sort.extend(sort_messages(keys))
    if query is not None:
        request.filter.CopyFrom(filter_message(query))
    resp = await ctx.call(method, request)
    items = [to_record(item) for item in getattr(resp, items_field)]
    return page_of(items, int(resp.total_size), page, per_page, capped=resp.total_size_capped)


class Collection:
    """One REST collection. Subclasses implement the operations they support."""

    fields: frozenset[str] = frozenset()
    """Fields usable in ``filter`` and ``sort``."""
    relations: Mapping[str, str] = {}
    """Relation field → target kind ("users" or "qpus"), for ``expand``."""

    def __init__(self, name: str) -> None:
        """Name the collection (from the config)."""
        self.name = name

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """One page of records, filtered, sorted, paged and counted by the server in SQL
        (see :func:`server_page`); a page costs one page of rows, never the whole table.
        With ``count_total`` false the page's ``totalItems`` is -1."""
        raise errors.ApiError(403, "Only administrators can list these records.")

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One record."""
        raise errors.ApiError(404, "The requested resource wasn't found.")

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a record from a JSON body."""
        raise errors.ApiError(403, "Only administrators can create these records.")

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a record (PATCH semantics)."""
        raise errors.ApiError(403, "Only administrators can update these records.")

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Delete a record."""
        raise errors.ApiError(403, "Only administrators can delete these records.")
