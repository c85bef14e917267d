"""Submits stored by one guarded insert (a QPU read before), and every way back to the
full admission: whatever path a submit takes, it stores what the full admission would.

On both stores (the fixture's `params`); the concurrent case on PostgreSQL, where
submits of one owner run side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.errors import FailedPreconditionError, ResourceExhaustedError
from qpi.server.domain.listing import ListQuery
from qpi.server.domain.models import Job, LeaseOffer, Qpu, User
from qpi.server.store.jobs import NewJob
from qpi.server.store.repositories import Repositories, sql_repositories
from tests.support.harness import migrated_engine
from tests.support.processes import wait_until

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repositories]:
    with migrated_engine(request.param, tmp_path) as engine:
        yield sql_repositories(engine)


@pytest.fixture
def pg_engine(tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine("postgres", tmp_path) as engine:
        yield engine


@dataclass
class Submits:
    """A submit use case as JobService builds it: the owner's rules, then routing to the
    QPU the submit names. Records which path decided each submit."""

    repos: Repositories
    owner: str
    key: str
    cap: int = 0
    admitted: list[Qpu | None] = field(default_factory=list)
    routed: list[Qpu] = field(default_factory=list)
    refuse_routing: bool = False
    paths: list[str] = field(default_factory=list)
    """Per submit: "built" (one guarded insert) or "full" (the full admission decided)."""

    def admit(self, user: User, pending: int, named: Qpu | None) -> NewJob:
        self.admitted.append(named)
        rules.ensure_can_submit(user.qpu_seconds, user.is_superuser)
        if self.cap and not user.is_superuser:
            accounting.ensure_can_queue(pending, self.cap, user.is_superuser)
        return self._job(named)

    def route(self, named: Qpu) -> NewJob:
        self.routed.append(named)
        return self._job(named)

    def _job(self, named: Qpu | None) -> NewJob:
        assert named is not None
        if self.refuse_routing or not named.enabled:
            raise FailedPreconditionError("QPU_DISABLED", "disabled")
        return NewJob(named.id, '{"circuits": []}', 2.0, named.name)

    def submit(
        self, request_id: str | None = None, offer: LeaseOffer | None = None
    ) -> tuple[Job, bool] | None:
        admitted = len(self.admitted)
        try:
            return self.repos.jobs.insert(
                self.owner,
                request_id,
                NOW,
                self.admit,
                pending_cap=self.cap,
                qpu_key=self.key,
                offer=offer,
                can_reserve=accounting.can_reserve,
                route=self.route,
            )
        finally:
            self.paths.append("full" if len(self.admitted) > admitted else "built")


def _setup(repos: Repositories, balance: float = 10.0, cap: int = 0) -> Submits:
    owner = repos.accounts.insert_user("a@example.com", "", "hash", balance).id
    repos.qpus.insert_qpu(
        "q1", enabled=True, num_qubits=5, coupling_map=[], native_gates=[], driver=None
    )
    return Submits(repos, owner, "q1", cap)


def _stored(repos: Repositories, submitted: tuple[Job, bool] | None) -> Job:
    assert submitted is not None
    job, new = submitted
    assert new
    assert repos.jobs.get(job.id) == job  # what the caller got is what was stored
    return job


def test_a_submit_to_a_qpu_read_before_needs_no_admission_reads(repos: Repositories) -> None:
    submits = _setup(repos)
    first = _stored(repos, submits.submit())
    assert submits.admitted == [repos.qpus.find("q1")]  # read with the owner
    second = _stored(repos, submits.submit("r-2"))
    assert len(submits.admitted) == 1  # the second was built from the QPU read first
    assert submits.routed[-1] == repos.qpus.find("q1")
    assert (second.state, second.qpu_id, second.request_id) == ("pending", first.qpu_id, "r-2")
    assert (second.qpu_name, second.estimated_seconds, second.attempt) == ("q1", 2.0, 0)


def _change_qpu(repos: Repositories, submits: Submits) -> None:
    repos.qpus.update_qpu("q1", NOW, num_qubits=7)


def _empty_balance(repos: Repositories, submits: Submits) -> None:
    repos.accounts.update_user(submits.owner, NOW, qpu_seconds=0.0)


def _refuse_routing(repos: Repositories, submits: Submits) -> None:
    submits.refuse_routing = True


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (_change_qpu, None),  # the job is built again from the QPU as it is now
        (_empty_balance, ResourceExhaustedError),
        (_refuse_routing, FailedPreconditionError),
    ],
)
def test_when_a_guard_refuses_the_full_admission_decides(
    repos: Repositories,
    change: Callable[[Repositories, Submits], None],
    refusal: type[Exception] | None,
) -> None:
    submits = _setup(repos)
    _stored(repos, submits.submit())
    change(repos, submits)
    if refusal is None:
        job = _stored(repos, submits.submit())
        now = repos.qpus.find("q1")
        assert submits.admitted[-1] == now  # read afresh, and built from it
        assert now is not None
        assert (now.num_qubits, job.qpu_id) == (7, now.id)
        _stored(repos, submits.submit())  # ... and remembered for the next submit
        assert submits.paths == ["full", "full", "built"]
    else:
        with pytest.raises(refusal):
            submits.submit()
        assert submits.paths == ["full", "full"]
    assert submits.routed  # the refused submit was built first


def test_the_pending_cap_holds_on_either_path(repos: Repositories) -> None:
    submits = _setup(repos, cap=2)
    _stored(repos, submits.submit())
    _stored(repos, submits.submit())
    with pytest.raises(ResourceExhaustedError):
        submits.submit()  # refused by the guard, then by the full admission
    assert submits.paths == ["full", "built", "full"]


def test_a_request_id_used_before_returns_its_job_on_either_path(repos: Repositories) -> None:
    submits = _setup(repos)
    first = _stored(repos, submits.submit("r-1"))
    assert submits.submit("r-1") == (first, False)
    second = _stored(repos, submits.submit("r-2"))
    assert submits.submit("r-2") == (second, False)
    assert len(submits.admitted) == 1  # an earlier job is returned without admitting
    assert _jobs_of(repos, submits.owner) == 2


def test_an_unknown_owner_is_no_submit_on_either_path(repos: Repositories) -> None:
    submits = _setup(repos)
    _stored(repos, submits.submit())
    submits.owner = "nobody"
    assert submits.submit() is None
    assert _jobs_of(repos, "nobody") == 0


def _jobs_of(repos: Repositories, owner: str) -> int:
    page, _ = repos.job_listing.list_jobs_query(owner, ListQuery(limit=100), NOW)
    return len(page)


def _offer(qpu_id: str) -> LeaseOffer:
    return LeaseOffer(qpu_id, "driver-1", "session-1", NOW + timedelta(minutes=5))


def test_a_built_job_is_stored_leased_only_where_a_claim_would_start_it(
    repos: Repositories,
) -> None:
    submits = _setup(repos, balance=3.0)
    queued = _stored(repos, submits.submit())
    offer = _offer(queued.qpu_id or "")
    # A job pending on the QPU: the new one must not overtake it.
    behind = _stored(repos, submits.submit(offer=offer))
    assert behind.state == "pending"
    repos.jobs.cancel(queued.id, NOW, lambda state: None)
    repos.jobs.cancel(behind.id, NOW, lambda state: None)
    leased = _stored(repos, submits.submit(offer=offer))
    assert (leased.state, leased.attempt, leased.lease_driver_id) == ("running", 1, "driver-1")
    # Its estimate (2 s) is reserved: the balance (3 s) cannot cover a second one.
    waiting = _stored(repos, submits.submit(offer=offer))
    assert waiting.state == "pending"
    assert submits.paths == ["full", "full", "built", "full"]


def test_concurrent_submits_of_one_owner_see_each_other(pg_engine: Engine) -> None:
    """Both wait on the owner's lock; the second's guard then counts the first's job."""
    repos = sql_repositories(pg_engine)
    submits = _setup(repos, cap=1)
    _stored(repos, submits.submit())
    repos.jobs.cancel(_only_pending(pg_engine), NOW, lambda state: None)
    outcomes: list[object] = []

    def submit() -> None:
        try:
            outcomes.append(submits.submit())
        except ResourceExhaustedError as exc:
            outcomes.append(exc)

    with pg_engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": submits.owner}
        )
        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(lambda: _waiting_on_locks(pg_engine) == 2, 30, "both submits waiting")
        holder.commit()
    for thread in threads:
        thread.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["ResourceExhaustedError", "tuple"]
    _only_pending(pg_engine)


def _only_pending(engine: Engine) -> str:
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM jobs WHERE state = 'pending'")).scalars().all()
    assert len(ids) == 1
    return str(ids[0])


def _waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one())
