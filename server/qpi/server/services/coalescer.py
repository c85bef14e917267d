"""Group commit on the database thread: calls that arrive together are stored together.

Every write goes through the database thread, one hop and one commit each. Under load many
writes of one kind (submits, driver results) arrive while the thread is busy with the
previous one; they queue here and the next hop stores every queued one in one call (no
added wait: a lone call goes at once, and the queue only fills while a store runs).
`SubmitGroups` and `CompletionQueue` are the two users; the failure policy is shared:

- a group's own per-item failures (returned as exceptions) reach only their callers;
- a group that raises as a whole is stored again one item at a time, so that one bad item
  fails only its own caller (the group call must leave nothing behind when it raises);
- an outage (`UnavailableError`) reaches every caller of the group at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from qpi.server.domain.errors import UnavailableError
from qpi.server.services.database import Database

logger = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - the item type, as O is the outcome's
O = TypeVar("O")  # noqa: E741


class Coalescer(Generic[I, O]):
    """Runs `one(item)` or `many(items)` on the database thread for concurrent callers."""

    def __init__(
        self,
        db: Database,
        one: Callable[[I], O],
        many: Callable[[list[I]], Sequence[O | Exception]],
        *,
        max_group: int,
        name: str,
    ) -> None:
        """`one` stores a lone item; `many` stores several in one transaction and returns
        one outcome per item (a value, or the exception that item alone failed with)."""
        self._db = db
        self._one = one
        self._many = many
        self._max_group = max_group
        self._name = name
        self._queued: list[tuple[I, asyncio.Future[O]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def run(self, item: I) -> O:
        """Stores `item` with whatever else is queued; its outcome, or raises its error.

        Raises:
            UnavailableError: DATABASE_UNAVAILABLE, as :meth:`Database.run`.
        """
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away must not cancel the store of the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queued:
            group = self._queued[: self._max_group]
            del self._queued[: self._max_group]
            await self._store(group)

    async def _store(self, group: list[tuple[I, asyncio.Future[O]]]) -> None:
        if len(group) == 1:
            item, future = group[0]
            try:
                outcome: O | BaseException = await self._db.run(self._one, item)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                outcome = exc
            _settle(future, outcome)
            return
        try:
            outcomes = await self._db.run(self._many, [item for item, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            if isinstance(exc, UnavailableError):
                for _, future in group:
                    _settle(future, exc)
                return
            logger.warning("[%s] a group of %d failed; storing one by one", self._name, len(group))
            for entry in group:
                await self._store([entry])
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[O], outcome: O | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
