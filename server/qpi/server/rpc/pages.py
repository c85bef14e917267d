"""Converting a page of records to messages without holding the event loop.

A listing page holds up to 1,000 records, and converting one to its message costs tens of
microseconds (a job with its payload about a hundred): a full page on the event loop would
stall every other call for up to a tenth of a second. Short pages are converted on the loop,
where a thread hop would cost more than the conversion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")
M = TypeVar("M")

CONVERT_ON_LOOP = 100
"""Pages up to this many records are converted on the event loop (a few milliseconds at
most); larger ones in a worker thread, while the loop serves other calls."""


async def messages(rows: Sequence[R], one: Callable[[R], M]) -> list[M]:
    """`one(row)` for every row, in order."""
    if len(rows) <= CONVERT_ON_LOOP:
        return [one(row) for row in rows]
    return await asyncio.to_thread(lambda: [one(row) for row in rows])
