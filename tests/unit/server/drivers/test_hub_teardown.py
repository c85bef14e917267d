"""The hub's teardown of a driver session survives the cancellation of its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from qpi.server.drivers.hub import DriverHub
from qpi.server.drivers.session import DriverSession


class _GatedDb:
    """Runs service calls only once the test opens the gate, like a busy database."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[str] = []

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await self.gate.wait()
        self.calls.append(fn.__name__)
        return fn(*args, **kwargs)


class _Jobs:
    def __init__(self) -> None:
        self.requeued: list[str] = []

    def requeue_session(self, session_id: str) -> list[str]:
        self.requeued.append(session_id)
        return ["job-1"]


class _Qpus:
    def mark_driver(self, driver_id: str, **_: Any) -> None:
        pass

    def set_status(self, qpu_id: str, executors: int, kind: str) -> None:
        pass


def _hub(db: _GatedDb, jobs: _Jobs, heartbeat_timeout: float = 30.0) -> DriverHub:
    return DriverHub(db, None, jobs, _Qpus(), None, heartbeat_timeout)  # type: ignore[arg-type]


def _register(hub: DriverHub, session: DriverSession) -> None:
    hub._sessions[session.driver_id] = session  # noqa: SLF001 - arrange a live session


def test_cancelled_caller_does_not_abort_requeue() -> None:
    async def scenario() -> tuple[list[str], bool]:
        db, jobs = _GatedDb(), _Jobs()
        hub = _hub(db, jobs)
        session = DriverSession("d1", "q1", "drv", "mock", "grpc", leases={("job-1", 1)})
        _register(hub, session)
        caller = asyncio.create_task(hub.disconnect(session, "stream ended"))
        await asyncio.sleep(0.01)
        caller.cancel()  # what gRPC does to the handler of a vanished peer
        await asyncio.sleep(0.01)
        db.gate.set()
        for _ in range(50):
            await asyncio.sleep(0.01)
        return jobs.requeued, hub.session("d1") is None

    requeued, removed = asyncio.run(scenario())
    assert requeued, "the lease was left to the stale-job recovery"
    assert removed


def test_silent_session_is_torn_down_by_liveness_loop() -> None:
    async def scenario() -> tuple[list[str], bool]:
        db, jobs = _GatedDb(), _Jobs()
        db.gate.set()
        hub = _hub(db, jobs, heartbeat_timeout=0.1)
        session = DriverSession("d1", "q1", "drv", "mock", "grpc", leases={("job-1", 1)})
        _register(hub, session)
        loop = asyncio.create_task(hub._liveness_loop())  # noqa: SLF001 - the unit under test
        for _ in range(50):
            await asyncio.sleep(0.01)
            if jobs.requeued:
                break
        loop.cancel()
        return jobs.requeued, session.closed

    requeued, closed = asyncio.run(scenario())
    assert len(requeued) == 1, requeued
    assert closed
