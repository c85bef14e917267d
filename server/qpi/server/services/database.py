"""The database thread pool: where blocking use cases run, off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from sqlalchemy.engine import Engine

from qpi.server.store.database import is_sqlite, outages_as_unavailable

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """Runs synchronous service calls (which use the repositories) in worker threads.

    Services are plain blocking code; their callers (servicers, the driver hub, the
    dispatcher, recovery) hop here once per use case with :meth:`run`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite allows one writer; a single thread serialises writes instead of
        # letting them fight over the file lock.
        workers = 1 if is_sqlite(engine) else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qpi-db")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` in the database thread pool.

        Raises:
            UnavailableError: DATABASE_UNAVAILABLE when the database cannot be reached.
        """
        loop = asyncio.get_running_loop()
        with outages_as_unavailable():
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )

    def close(self) -> None:
        """Stops the worker threads and disposes of the engine."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()
