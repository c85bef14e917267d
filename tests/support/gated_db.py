"""A stand-in for the server's `Database` whose calls wait for a gate: tests queue work
while the "database thread" is busy, then open the gate and see how it was grouped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class GatedDb:
    """Runs calls inline, each only once the test opened the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.fail_with: Exception | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return fn(*args)
