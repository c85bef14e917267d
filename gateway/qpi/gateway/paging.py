"""Read a window of a paginated list RPC (the server filters, sorts and pages in SQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qpi.gateway.context import Ctx

PAGE_SIZE = 1000
MAX_PAGES = 1000


async def fetch_window(
    ctx: Ctx, method: Callable[..., Any], request: Any, items_field: str, skip: int, limit: int
) -> list[Any]:
    """Items ``skip`` to ``skip + limit`` (0: to the end) of a list RPC, a server page of at
    most :data:`PAGE_SIZE` at a time (``skip``, ``page_size`` and ``skip_total`` are set
    here; the request carries the rest of the query)."""
    items: list[Any] = []
    request.skip_total = True
    for _ in range(MAX_PAGES):
        wanted = limit - len(items) if limit else PAGE_SIZE
        request.skip, request.page_size = skip + len(items), min(wanted, PAGE_SIZE)
        resp = await ctx.call(method, request)
        got = getattr(resp, items_field)
        items.extend(got)
        if len(got) < request.page_size or (limit and len(items) >= limit):
            break
    return items
