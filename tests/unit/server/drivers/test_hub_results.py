"""Results that cannot be stored (database down) are never dropped with an ack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qpi.server.domain.errors import database_unavailable
from qpi.server.drivers.hub import DriverHub
from qpi.server.drivers.session import Ack, DriverSession


class _FlakyDb:
    """Fails the first `failures` calls like an unreachable database, then runs them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise database_unavailable()
        return fn(*args, **kwargs)


class _Jobs:
    def __init__(self) -> None:
        self.stored: list[tuple[str, int]] = []

    def complete(self, job_id: str, attempt: int, driver_id: str, **_: Any) -> bool:
        self.stored.append((job_id, attempt))
        return True


def _hub(db: _FlakyDb, jobs: _Jobs) -> DriverHub:
    return DriverHub(db, None, jobs, None, None, 30.0)  # type: ignore[arg-type]


def _session(transport: str) -> DriverSession:
    return DriverSession("d1", "q1", "drv", "mock", transport, leases={("job-1", 1)})


async def _report(hub: DriverHub, session: DriverSession) -> bool:
    return await hub.result(
        session, "job-1", 1, result_json="{}", error=None, execution_seconds=1.0
    )


async def test_grpc_driver_keeps_its_unstored_result_and_lease() -> None:
    db, jobs = _FlakyDb(failures=1), _Jobs()
    session = _session("grpc")
    assert await _report(_hub(db, jobs), session) is False
    assert session.outbox.empty()  # no ack: the driver resends it
    assert ("job-1", 1) in session.leases  # and the lease is not given up
    assert jobs.stored == []


async def test_result_of_a_driver_that_cannot_resend_is_retried_until_stored() -> None:
    db, jobs = _FlakyDb(failures=2), _Jobs()
    session = _session("nng")
    assert await _report(_hub(db, jobs), session) is True
    assert jobs.stored == [("job-1", 1)]
    assert session.outbox.get_nowait() == Ack("job-1", 1, True)
    assert not session.leases
