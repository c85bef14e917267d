"""Collect every page of a paginated list RPC (the gateway filters and pages itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qpi.gateway.context import Ctx

PAGE_SIZE = 1000
MAX_PAGES = 1000


async def fetch_all(
    ctx: Ctx, method: Callable[..., Any], request: Any, items_field: str
) -> list[Any]:
    """Call a list RPC repeatedly until its ``next_page_token`` is empty.

    Args:
        ctx: Request context (credentials are forwarded).
        method: Bound stub method, e.g. ``ctx.stubs.jobs.ListJobs``.
        request: The first request; ``page_size`` and ``page_token`` are filled in.
        items_field: Name of the repeated field holding the items.

    Returns:
        All items, in server order.
    """
    items: list[Any] = []
    request.page_size = PAGE_SIZE
    for _ in range(MAX_PAGES):
        resp = await ctx.call(method, request)
        items.extend(getattr(resp, items_field))
        if not resp.next_page_token:
            break
        request.page_token = resp.next_page_token
    return items
