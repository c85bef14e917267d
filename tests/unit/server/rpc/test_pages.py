"""A listing page is converted on the event loop only when it is short."""

from __future__ import annotations

import threading

from qpi.server.rpc.pages import CONVERT_ON_LOOP, messages


async def test_short_pages_stay_on_the_loop_and_long_ones_leave_it() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def one(row: int) -> str:
        threads.add(threading.get_ident())
        return f"m{row}"

    short = list(range(CONVERT_ON_LOOP))
    assert await messages(short, one) == [f"m{r}" for r in short]
    assert threads == {loop_thread}

    threads.clear()
    long = list(range(CONVERT_ON_LOOP + 1))
    assert await messages(long, one) == [f"m{r}" for r in long]  # in order
    assert threads
    assert loop_thread not in threads
