"""LeaseService decides what a result stores and charges; the repository only writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from qpi.server.domain.clock import FakeClock
from qpi.server.domain.models import Job
from qpi.server.services.events import EventBus
from qpi.server.services.lease_service import LeaseService
from qpi.server.store.jobs import ChargeRule
from tests.support.domain_jobs import T0, make_job


def _job(state: str) -> Job:
    return make_job(state=state, attempt=1, started_at=T0, finished_at=T0)


@dataclass
class _Leases:
    """Records what the service asks the store to write."""

    completed: list[dict[str, Any]] = field(default_factory=list)
    accept: bool = True

    def complete(
        self,
        job_id: str,
        attempt: int,
        driver_id: str,
        *,
        result_json: str | None,
        error: str | None,
        now: datetime,
        charge: ChargeRule,
    ) -> Job | None:
        self.completed.append({"result_json": result_json, "error": error, "charge": charge})
        return _job("failed" if error else "completed") if self.accept else None


def _service(leases: _Leases, max_result_bytes: int = 1000) -> LeaseService:
    return LeaseService(leases, FakeClock(T0), EventBus(), 30.0, max_result_bytes)  # type: ignore[arg-type]


def test_users_pay_what_they_used_up_to_their_balance() -> None:
    leases = _Leases()
    assert _service(leases).complete(
        "j1", 1, "d1", result_json="{}", error=None, execution_seconds=4.0
    )
    charge = leases.completed[0]["charge"]
    assert charge(10.0, False) == (4.0, 6.0)
    assert charge(3.0, False) == (3.0, 0.0)


def test_superusers_pay_nothing_but_the_job_records_its_time() -> None:
    leases = _Leases()
    _service(leases).complete(
        "j1", 1, "d1", result_json="{}", error=None, execution_seconds=float("nan")
    )
    _service(leases).complete("j1", 1, "d1", result_json="{}", error=None, execution_seconds=2.5)
    assert leases.completed[0]["charge"](5.0, True) == (0.0, 5.0)
    assert leases.completed[1]["charge"](5.0, True) == (2.5, 5.0)


@pytest.mark.parametrize(
    ("result", "problem"),
    [("[1, 2]", "not a JSON object"), ("{" + " " * 2000 + "}", "above the server's limit")],
)
def test_unstorable_results_become_failures(result: str, problem: str) -> None:
    leases = _Leases()
    _service(leases).complete("j1", 1, "d1", result_json=result, error=None, execution_seconds=1)
    written = leases.completed[0]
    assert written["result_json"] is None
    assert problem in written["error"]


def test_a_stale_result_is_reported_as_not_accepted() -> None:
    leases = _Leases(accept=False)
    assert not _service(leases).complete(
        "j1", 1, "d1", result_json="{}", error=None, execution_seconds=1.0
    )
