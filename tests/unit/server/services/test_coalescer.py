"""The shared group-commit machinery (services/coalescer.py)."""

from __future__ import annotations

import asyncio

import pytest

from qpi.server.services.coalescer import Coalescer
from tests.support.gated_db import GatedDb


class _Store:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def one(self, item: str) -> str:
        self.calls.append([item])
        return item.upper()

    def many(self, items: list[str]) -> list[str | Exception]:
        self.calls.append(list(items))
        return [KeyError(i) if i == "refused" else i.upper() for i in items]


async def test_a_caller_that_goes_away_does_not_cancel_the_others() -> None:
    db, store = GatedDb(), _Store()
    group: Coalescer[str, str] = Coalescer(db, store.one, store.many, max_group=8, name="t")  # type: ignore[arg-type]
    first = asyncio.create_task(group.run("a"))
    await asyncio.sleep(0)  # "a" is being stored (waits for the gate)
    others = [asyncio.create_task(group.run(i)) for i in ("b", "c")]
    await asyncio.sleep(0)
    others[0].cancel()  # the caller of "b" leaves while "b" is queued
    db.gate.set()
    assert await first == "A"
    assert await others[1] == "C"
    with pytest.raises(asyncio.CancelledError):
        await others[0]
    # "b" was still stored, with "c", in one call.
    assert store.calls == [["a"], ["b", "c"]]


async def test_an_item_refused_in_a_group_fails_only_its_caller() -> None:
    db, store = GatedDb(), _Store()
    group: Coalescer[str, str] = Coalescer(db, store.one, store.many, max_group=8, name="t")  # type: ignore[arg-type]
    tasks = [asyncio.create_task(group.run(i)) for i in ("x", "refused", "y")]
    await asyncio.sleep(0)
    db.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes[0] == "X"
    assert outcomes[2] == "Y"
    assert isinstance(outcomes[1], KeyError)
    assert store.calls == [["x", "refused", "y"]]  # one call; no one-by-one retry
