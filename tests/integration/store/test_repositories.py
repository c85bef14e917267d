"""Repository contract: what services rely on, against the selected store.

Runs on SQLite by default and on PostgreSQL with QPI_TEST_DATABASE=postgres, so a later
rewrite of a repository body (Core statements, RETURNING) keeps the same meaning on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from qpi.server.domain.errors import FailedPreconditionError
from qpi.server.domain.listing import Condition, FieldRef, Junction, ListQuery, Total, Value
from qpi.server.domain.models import (
    InstructionProperties,
    Job,
    Qpu,
    QpuCapabilities,
    ReportedDevice,
    Revocation,
    User,
)
from qpi.server.domain.policy import Booking, QueueSnapshot
from qpi.server.store import listing
from qpi.server.store.base import DuplicateKeyError, autocommit_reads
from qpi.server.store.jobs import NewJob, ReserveRule
from qpi.server.store.qpus import NewDriver
from qpi.server.store.repositories import Repositories, sql_repositories
from tests.support.harness import migrated_engine, selected_database_kind

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of the selected kind, dropped afterwards."""
    with migrated_engine(selected_database_kind(), tmp_path) as engine:
        yield engine


@pytest.fixture
def repos(engine: Engine) -> Repositories:
    return sql_repositories(engine)


def _user(repos: Repositories, email: str = "a@example.com", balance: float = 10.0) -> str:
    return repos.accounts.insert_user(email, "", "hash", balance).id


def _qpu(repos: Repositories, name: str = "q1", num_qubits: int = 5) -> str:
    qpu, _ = repos.qpus.insert_qpu(
        name, enabled=True, num_qubits=num_qubits, coupling_map=[], native_gates=[], driver=None
    )
    return qpu.id


def _job(
    repos: Repositories, user: str, qpu: str, at: datetime = NOW, key: str = "", estimate: float = 0
) -> Job:
    stored = repos.jobs.insert(
        user,
        key or None,
        at,
        lambda owner, pending, named: NewJob(qpu, '{"circuits": []}', estimate),
    )
    assert stored is not None
    return stored[0]


def _any_balance(balance: float, reserved: float, estimate: float, is_superuser: bool) -> bool:
    return True


def _claim(repos: Repositories, job_id: str, driver: str, session: str) -> Job | None:
    return repos.leases.claim(job_id, driver, session, NOW, LATER, _any_balance)


def _never_charge(balance: float, is_superuser: bool) -> tuple[float, float]:
    raise AssertionError("a refused result must not charge anyone")


def test_a_result_is_accepted_once_from_the_lease_holder(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    job = _job(repos, user, qpu)
    claimed = _claim(repos, job.id, "d1", "s1")
    assert claimed is not None
    assert (claimed.state, claimed.attempt, claimed.lease_driver_id) == ("running", 1, "d1")
    assert _claim(repos, job.id, "d2", "s2") is None

    def finish(attempt: int, driver: str) -> Job | None:
        return repos.leases.complete(
            job.id,
            attempt,
            driver,
            result_json='{"ok": 1}',
            error=None,
            now=LATER,
            charge=lambda balance, su: (3.0, balance - 3.0),
        )

    assert (
        repos.leases.complete(
            job.id, 2, "d1", result_json="{}", error=None, now=LATER, charge=_never_charge
        )
        is None
    )
    assert (
        repos.leases.complete(
            job.id, 1, "d2", result_json="{}", error=None, now=LATER, charge=_never_charge
        )
        is None
    )
    done = finish(1, "d1")
    assert done is not None
    assert (done.state, done.result_json, done.charged_seconds) == ("completed", '{"ok": 1}', 3.0)
    assert done.lease_driver_id is None
    assert done.finished_at == LATER
    owner = repos.accounts.get_user(user)
    assert owner is not None
    assert owner.qpu_seconds == 7.0  # charged once, with the result
    assert (
        repos.leases.complete(
            job.id, 1, "d1", result_json="{}", error=None, now=LATER, charge=_never_charge
        )
        is None
    )
    owner = repos.accounts.get_user(user)
    assert owner is not None
    assert owner.qpu_seconds == pytest.approx(7.0)


def test_requeue_by_stream_leaves_other_streams_leases(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    first, second = _job(repos, user, qpu), _job(repos, user, qpu)
    assert _claim(repos, first.id, "d1", "old-stream")
    assert _claim(repos, second.id, "d1", "new-stream")
    requeued = repos.leases.requeue_session("old-stream", LATER)
    assert [(j.id, j.state, j.attempt) for j in requeued] == [(first.id, "pending", 1)]
    still = repos.jobs.get(second.id)
    assert still is not None
    assert still.state == "running"
    assert repos.leases.requeue_session("old-stream", LATER) == []


def test_resume_reattaches_only_the_current_attempt(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    job = _job(repos, user, qpu)
    assert _claim(repos, job.id, "d1", "s1")
    assert [j.id for j in repos.leases.requeue_driver("d1", NOW)] == [job.id]
    assert _claim(repos, job.id, "d1", "s2")
    held = [(job.id, 1), (job.id, 2), ("missing", 1)]
    assert repos.leases.resume("d1", qpu, held, "s3", LATER) == [(job.id, 2)]
    assert repos.leases.resume("d1", "other-qpu", held, "s3", LATER) == []


def test_expired_leases_are_requeued(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    job = _job(repos, user, qpu)
    assert repos.leases.claim(job.id, "d1", "s1", NOW, NOW + timedelta(seconds=3), _any_balance)
    assert repos.leases.requeue_expired(NOW + timedelta(seconds=1)) == []
    assert repos.leases.renew_leases("d1", NOW + timedelta(seconds=10)) == [(job.id, 1)]
    assert repos.leases.renew_leases("d2", NOW + timedelta(seconds=10)) == []
    assert repos.leases.requeue_expired(NOW + timedelta(seconds=5)) == []
    expired = repos.leases.requeue_expired(NOW + timedelta(seconds=11))
    assert [(j.id, j.state, j.started_at) for j in expired] == [(job.id, "pending", None)]


def test_leases_expired_while_the_server_was_down_get_a_grace_period(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    lapsed, current = _job(repos, user, qpu), _job(repos, user, qpu)
    assert repos.leases.claim(lapsed.id, "d1", "s1", NOW, NOW + timedelta(seconds=3), _any_balance)
    assert repos.leases.claim(
        current.id, "d2", "s2", NOW, NOW + timedelta(seconds=60), _any_balance
    )
    # The server comes back at +30 s: only the lapsed lease moves, to +35 s.
    assert repos.leases.extend_expiring_leases(NOW + timedelta(seconds=35)) == 1
    assert repos.leases.requeue_expired(NOW + timedelta(seconds=34)) == []
    assert [j.id for j in repos.leases.requeue_expired(NOW + timedelta(seconds=36))] == [lapsed.id]
    assert [j.id for j in repos.leases.requeue_expired(NOW + timedelta(seconds=61))] == [current.id]


def test_cancel_reports_the_lease_it_ends_and_honours_the_check(repos: Repositories) -> None:
    user, qpu = _user(repos), _qpu(repos)
    job = _job(repos, user, qpu)
    assert _claim(repos, job.id, "d1", "s1")

    def refuse(state: str) -> None:
        raise FailedPreconditionError("JOB_ALREADY_TERMINAL", state)

    with pytest.raises(FailedPreconditionError):
        repos.jobs.cancel(job.id, LATER, refuse)
    unchanged = repos.jobs.get(job.id)
    assert unchanged is not None
    assert unchanged.state == "running"
    outcome = repos.jobs.cancel(job.id, LATER, lambda state: None)
    assert outcome is not None
    cancelled, revocation = outcome
    assert cancelled.state == "cancelled"
    assert cancelled.lease_driver_id is None
    assert revocation == Revocation(job.id, 1, "d1")
    assert repos.jobs.cancel("missing", LATER, lambda state: None) is None


def test_idempotency_keys_are_unique_per_user(repos: Repositories) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)
    first = _job(repos, alice, qpu, key="k1")
    assert _job(repos, alice, qpu, key="k1") == first  # the same job again, as it is now
    assert _job(repos, bob, qpu, key="k1").user_id == bob
    found = repos.jobs.by_request_id(alice, "k1")
    assert found is not None
    assert found.id == first.id


def test_display_names_of_qpus_and_owners(repos: Repositories) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)
    qpus, users = repos.jobs.display_names({qpu}, {alice, bob})
    assert qpus == {qpu: "q1"}
    assert users == {alice: "a@example.com", bob: "b@example.com"}


def _accept(existing: list[Booking], own: list[Booking]) -> None:
    return None


def test_snapshot_includes_the_booking_holders_oldest_job(repos: Repositories) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)
    oldest = _job(repos, alice, qpu, NOW - timedelta(minutes=2))
    bobs = _job(repos, bob, qpu, NOW - timedelta(minutes=1))
    repos.bookings.insert_slot(bob, None, NOW - timedelta(hours=1), LATER, _accept, None)
    repos.bookings.insert_slot(alice, qpu, NOW - timedelta(hours=3), NOW, _accept, None)
    snapshot, enabled = repos.leases.snapshot(qpu, NOW, _any_balance)
    assert enabled
    assert [p.id for p in snapshot.pending] == [oldest.id, bobs.id]
    assert [b.user_id for b in snapshot.bookings] == [bob]  # ended slots are left out
    missing, enabled = repos.leases.snapshot("missing", NOW, _any_balance)
    assert not enabled
    assert list(missing.pending) == []


def test_snapshot_tells_when_it_saw_the_only_pending_job(repos: Repositories) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)

    def snapshot(rule: ReserveRule = _any_balance) -> QueueSnapshot:
        with repos.leases.dispatch_round():  # as the dispatcher asks (PostgreSQL: locking)
            return repos.leases.snapshot(qpu, NOW, rule)[0]

    empty = snapshot()
    assert empty.complete  # nothing pending at all, and known
    assert not empty.pending
    only = _job(repos, alice, qpu, NOW - timedelta(minutes=2), estimate=20.0)  # > balance
    alone = snapshot()
    assert [p.id for p in alone.pending] == [only.id]
    assert alone.complete  # once it is claimed the queue is empty
    bobs = _job(repos, bob, qpu, NOW - timedelta(minutes=1))
    two = snapshot()
    assert [p.id for p in two.pending] == [only.id]
    assert not two.complete

    def within_balance(balance: float, reserved: float, estimate: float, su: bool) -> bool:
        return reserved + estimate <= balance

    # the oldest owner cannot pay: the next owner's job is picked, and whether it is
    # alone is not known
    skipped = snapshot(within_balance)
    assert [p.id for p in skipped.pending] == [bobs.id]
    assert not skipped.complete
    # nothing affordable is not the same as nothing pending
    assert _claim(repos, bobs.id, "d1", "s1")
    unaffordable = snapshot(within_balance)
    assert not unaffordable.pending
    assert not unaffordable.complete


def test_owners_who_cannot_reserve_are_skipped_and_not_claimed(repos: Repositories) -> None:
    poor, rich, qpu = _user(repos, balance=5.0), _user(repos, "b@example.com"), _qpu(repos)
    running = _job(repos, poor, qpu, NOW - timedelta(minutes=3), estimate=4.0)
    assert _claim(repos, running.id, "d1", "s1")
    too_big = _job(repos, poor, qpu, NOW - timedelta(minutes=2), estimate=2.0)
    _job(repos, poor, qpu, NOW - timedelta(minutes=1), estimate=0.5)  # queued behind it
    affordable = _job(repos, rich, qpu, NOW, estimate=2.0)
    asked: list[tuple[float, float, float]] = []

    def within_balance(balance: float, reserved: float, estimate: float, su: bool) -> bool:
        asked.append((balance, reserved, estimate))
        return su or reserved + estimate <= balance

    snapshot, _ = repos.leases.snapshot(qpu, NOW, within_balance)
    assert [p.id for p in snapshot.pending] == [affordable.id]
    assert (5.0, 4.0, 2.0) in asked  # the running job's estimate counts as reserved
    claimed = repos.leases.claim(too_big.id, "d1", "s1", NOW, LATER, within_balance)
    assert claimed is None
    still = repos.jobs.get(too_big.id)
    assert still is not None
    assert still.state == "pending"


def test_submits_are_admitted_with_the_owners_pending_count(repos: Repositories) -> None:
    alice, qpu = _user(repos), _qpu(repos)
    _job(repos, alice, qpu)
    _job(repos, alice, qpu)
    counts: list[int] = []

    def admit(owner: User, pending: int, named: Qpu | None) -> NewJob:
        counts.append(pending)
        assert owner.id == alice
        return NewJob(qpu, "{}", 1.5)

    # The count stops at the cap it is given (a bounded read in any queue), and is not
    # read without one.
    for cap in (10, 1, 0):
        stored = repos.jobs.insert(alice, None, NOW, admit, pending_cap=cap)
        assert stored is not None
        repos.jobs.cancel(stored[0].id, NOW, lambda state: None)
    assert counts == [2, 1, 0]
    stored = repos.jobs.insert(alice, "k", NOW, admit)
    assert stored is not None
    job, new = stored
    assert (job.estimated_seconds, job.request_id, new) == (1.5, "k", True)

    def refuse(owner: User, pending: int, named: Qpu | None) -> NewJob:
        raise FailedPreconditionError("QPU_DISABLED", "no")

    # A request id used already returns its job without admitting anything.
    assert repos.jobs.insert(alice, "k", NOW, refuse) == (job, False)
    with pytest.raises(FailedPreconditionError):
        repos.jobs.insert(alice, None, NOW, refuse)
    assert repos.jobs.insert("ghost", None, NOW, admit) is None
    total = _jobs_of(repos, alice)
    assert total == 6  # two before, three cancelled, "k"


def test_a_submit_reads_the_qpu_it_names_with_its_owner(repos: Repositories) -> None:
    alice, qpu = _user(repos), _qpu(repos, "q1")
    seen: list[Qpu | None] = []

    def admit(owner: User, pending: int, named: Qpu | None) -> NewJob:
        seen.append(named)
        return NewJob(qpu, "{}", 1.0)

    for key in ("q1", qpu, "no-such-qpu", ""):
        assert repos.jobs.insert(alice, None, NOW, admit, qpu_key=key) is not None
    assert [(q.id, q.name) if q else None for q in seen] == [
        (qpu, "q1"),
        (qpu, "q1"),
        None,
        None,
    ]
    assert seen[0] == repos.qpus.find("q1")  # the same record the QPU store gives


def _committed(engine: Engine, job_id: str) -> bool:
    """Whether another connection sees the job (its transaction committed)."""
    with engine.connect() as other:
        found = other.execute(text("SELECT id FROM jobs WHERE id = :id"), {"id": job_id})
        return found.first() is not None


def test_a_submit_group_stores_its_inserts_in_one_transaction(
    repos: Repositories, engine: Engine
) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)
    commits: list[object] = []
    event.listen(engine, "commit", commits.append)
    counts: list[int] = []

    def admit(owner: User, pending: int, named: Qpu | None) -> NewJob:
        counts.append(pending)  # sees the group's earlier inserts of this owner
        return NewJob(qpu, "{}", 1.0)

    def refuse(owner: User, pending: int, named: Qpu | None) -> NewJob:
        raise FailedPreconditionError("QPU_DISABLED", "no")

    with repos.jobs.submit_group() as shared:
        first = repos.jobs.insert(alice, "k", NOW, admit, pending_cap=10)
        assert first is not None
        committed_at_once = _committed(engine, first[0].id)
        with pytest.raises(FailedPreconditionError):  # refused alone: the group goes on
            repos.jobs.insert(bob, None, NOW, refuse, pending_cap=10)
        # the key the group used already: its own, uncommitted job
        again = repos.jobs.insert(alice, "k", NOW, admit, pending_cap=10)
        second = repos.jobs.insert(alice, None, NOW, admit, pending_cap=10)
        third = repos.jobs.insert(bob, None, NOW, admit, pending_cap=10)
    assert first is not None
    assert second is not None
    assert third is not None
    assert again == (first[0], False)
    assert counts == [0, 1, 0]  # the duplicate was not admitted
    grouped = selected_database_kind() == "sqlite"  # PostgreSQL: a transaction each
    assert shared is grouped
    # Grouped, the first insert is committed with the rest at the group's end; on its own
    # (PostgreSQL), at once, its COMMIT sent with its INSERT where SQLAlchemy does not see it.
    assert committed_at_once is not grouped
    if grouped:
        assert len(commits) == 1
    for user, expected in ((alice, 2), (bob, 1)):
        total = _jobs_of(repos, user)
        assert total == expected


def test_a_submit_group_that_fails_stores_none_of_its_inserts(repos: Repositories) -> None:
    alice, qpu = _user(repos), _qpu(repos)

    def admit(owner: User, pending: int, named: Qpu | None) -> NewJob:
        return NewJob(qpu, "{}", 1.0)

    def two_then_fail() -> None:
        with repos.jobs.submit_group():
            repos.jobs.insert(alice, None, NOW, admit)
            repos.jobs.insert(alice, None, NOW, admit)
            raise RuntimeError("the commit never comes")

    with pytest.raises(RuntimeError):
        two_then_fail()
    total = _jobs_of(repos, alice)
    # SQLite: the group's one transaction rolled back; PostgreSQL: each insert committed.
    assert total == (0 if selected_database_kind() == "sqlite" else 2)


def test_booking_checks_see_overlapping_slots_and_own_bookings(repos: Repositories) -> None:
    alice, bob, qpu = _user(repos), _user(repos, "b@example.com"), _qpu(repos)
    first = repos.bookings.insert_slot(alice, qpu, NOW, LATER, _accept, None)
    bobs = repos.bookings.insert_slot(bob, qpu, NOW - timedelta(days=1), NOW, _accept, None)
    seen: list[tuple[list[Booking], list[Booking]]] = []

    def record(existing: list[Booking], own: list[Booking]) -> None:
        seen.append((existing, own))

    window = (NOW - timedelta(days=2), NOW + timedelta(days=2))
    second = repos.bookings.insert_slot(
        alice, None, LATER - timedelta(minutes=1), LATER + timedelta(hours=1), record, window
    )
    assert seen == [([first.booking()], [first.booking()])]
    assert bobs.booking() not in seen[0][1]

    def refuse(existing: list[Booking], own: list[Booking]) -> None:
        raise FailedPreconditionError("BOOKING_OVERLAP", str(existing))

    with pytest.raises(FailedPreconditionError):
        repos.bookings.move_slot(second.id, alice, qpu, NOW, LATER, refuse, None)
    kept = repos.bookings.get_slot(second.id)
    assert kept is not None
    assert kept.qpu_id is None
    assert repos.bookings.move_slot("missing", alice, qpu, NOW, LATER, _accept, None) is None


def test_a_time_request_is_decided_and_credited_once(repos: Repositories) -> None:
    alice = _user(repos, balance=1.0)
    request = repos.bookings.insert_request(alice, 5.0, "thesis")
    approved = repos.bookings.decide_request(
        request.id,
        transition=lambda state: "approved",
        handled_by="admin",
        rejection_reason=None,
        credit=lambda balance, seconds: balance + seconds,
    )
    assert approved is not None
    assert (approved.state, approved.handled_by) == ("approved", "admin")

    def refuse(state: str) -> str:
        raise FailedPreconditionError("TIME_REQUEST_PROCESSED", state)

    with pytest.raises(FailedPreconditionError):
        repos.bookings.decide_request(
            request.id,
            transition=refuse,
            handled_by="admin",
            rejection_reason=None,
            credit=lambda balance, seconds: balance + seconds,
        )
    owner = repos.accounts.get_user(alice)
    assert owner is not None
    assert owner.qpu_seconds == pytest.approx(6.0)


def test_accounts_keep_emails_token_hashes_and_secrets_unique(repos: Repositories) -> None:
    alice = _user(repos)
    with pytest.raises(DuplicateKeyError):
        _user(repos)
    token = repos.accounts.insert_api_token(alice, "h" * 64, "qpi_abc", "ci", None)
    with pytest.raises(DuplicateKeyError):
        repos.accounts.insert_api_token(alice, "h" * 64, "qpi_abc", "again", None)
    found = repos.accounts.api_token_owner("h" * 64)
    assert found is not None
    assert found[0] == token
    assert found[1] is not None
    assert found[1].id == alice
    assert repos.accounts.api_token_owner("x" * 64) is None
    assert repos.accounts.secret("key", "first") == "first"
    assert repos.accounts.secret("key", "second") == "first"
    renamed = repos.accounts.update_api_token(token.id, name="renamed")
    assert renamed is not None
    assert (renamed.name, renamed.expires_at) == ("renamed", None)


def test_authentication_reads_return_the_stored_records(repos: Repositories) -> None:
    # The prepared lookups behind authentication give what the ORM reads give: the same
    # values and types (aware datetimes, booleans), for a superuser with an expiring token.
    admin = repos.accounts.upsert_superuser("root@example.com", "pbkdf2$x", NOW)
    expires = NOW + timedelta(days=3)
    token = repos.accounts.insert_api_token(admin.id, "e" * 64, "qpi_eee", "ci", expires)
    found = repos.accounts.api_token_owner("e" * 64)
    assert found == (token, repos.accounts.get_user(admin.id))
    assert found[0].expires_at is not None
    assert found[0].expires_at.utcoffset() is not None
    assert found[1] is not None
    assert found[1].is_superuser is True
    credentials = repos.accounts.credentials(admin.id)
    assert credentials is not None
    assert credentials.user == repos.accounts.get_user(admin.id)
    assert credentials.password_hash == "pbkdf2$x"
    assert repos.accounts.credentials("nobody") is None


def test_qpu_registry_routing_and_status(repos: Repositories) -> None:
    alice = _user(repos)
    small, wide = _qpu(repos, "small", 2), _qpu(repos, "wide", 0)
    with pytest.raises(DuplicateKeyError):
        _qpu(repos, "small")
    _job(repos, alice, wide)
    candidates = {q.name: n for q, n in repos.qpus.routing_candidates(3)}
    assert candidates == {"wide": 1}
    assert repos.qpus.set_status(small, True, "mock", NOW) is True
    assert repos.qpus.set_status(small, True, "mock", NOW) is False
    found = repos.qpus.get_with_queue("small")
    assert found is not None
    assert (found[0].status, found[0].executor, found[1]) == (
        "online",
        "mock",
        0,
    )
    caps = QpuCapabilities(
        meas_levels=(1, 2), instructions=(InstructionProperties("cz", (0, 1), 2e-8, None),)
    )
    reported = ReportedDevice(7, ("cz", "sx"), ((0, 1), (1, 0)), caps)
    assert repos.qpus.learn_device(wide, reported) is True
    assert repos.qpus.learn_device(wide, reported) is False  # nothing new
    learned = repos.qpus.find("wide")
    assert learned is not None
    assert (learned.num_qubits, learned.native_gates) == (7, ("cz", "sx"))
    assert learned.coupling_map == ((0, 1), (1, 0))
    assert learned.capabilities == caps
    # The device is the authority: fewer qubits lower the count, more never raise it, and
    # an all-to-all (empty) report keeps the stored map.
    repos.qpus.learn_device(wide, ReportedDevice(3, ("x",)))
    narrowed = repos.qpus.find("wide")
    assert narrowed is not None
    assert (narrowed.num_qubits, narrowed.native_gates) == (3, ("cz", "sx"))
    assert narrowed.coupling_map == ((0, 1), (1, 0))
    assert narrowed.capabilities == QpuCapabilities()
    repos.qpus.learn_device(wide, ReportedDevice(16))
    assert repos.qpus.find("wide").num_qubits == 3  # type: ignore[union-attr]
    driver = repos.qpus.insert_driver(small, NewDriver("d", "mock", "python", "t" * 64))
    assert repos.qpus.driver_by_token("t" * 64) == driver
    repos.qpus.reset_statuses()
    offline = repos.qpus.find(small)
    assert offline is not None
    assert offline.status == "offline"


def test_notifications_record_targets_and_dismissals(repos: Repositories) -> None:
    alice, bob = _user(repos), _user(repos, "b@example.com")
    assert repos.notifications.missing_users([alice, "ghost"]) == ["ghost"]
    view = repos.notifications.insert("Maintenance", "", None, None, [bob, alice, bob])
    assert view.targets == tuple(sorted({alice, bob}))
    repos.notifications.dismiss(view.notification.id, alice)
    repos.notifications.dismiss(view.notification.id, alice)  # idempotent
    feed, _ = repos.notification_listing.list_notifications_query(
        alice, False, True, True, ListQuery(), datetime.now(UTC)
    )
    assert {v.notification.id: (v.dismissed, v.targets) for v in feed} == {
        view.notification.id: (True, view.targets)
    }
    assert repos.notifications.targets_of("missing") is None


def test_a_count_that_stops_at_its_cap_says_so(
    repos: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A total is exact up to the cap, exactly the cap included, and capped beyond: the
    count reads one match past the cap, on every path a total takes (a counting
    statement, the last page's rows, SQLite's range probe)."""
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    monkeypatch.setattr(listing, "READ_COUNT_CAP", 2)
    alice, bob, carol = _user(repos), _user(repos, "b@example.com"), _user(repos, "c@x.org")
    qpu = _qpu(repos)
    for owner, jobs in ((alice, 5), (bob, 3), (carol, 2)):
        for i in range(jobs):
            _job(repos, owner, qpu, NOW + timedelta(seconds=i))

    def total(owner: str, query: ListQuery) -> Total | None:
        return repos.job_listing.list_jobs_query(owner, query, NOW)[1]

    # Counted by a statement (the page is full).
    assert total(alice, ListQuery(limit=2)) == Total(3, capped=True)
    assert total(bob, ListQuery(limit=2)) == Total(3, capped=False)
    # Counted from a last page (not full): its rows and offset are every match.
    assert total(alice, ListQuery(offset=4, limit=2)) == Total(3, capped=True)
    assert total(bob, ListQuery(limit=30)) == Total(3, capped=False)
    assert total(carol, ListQuery(limit=30)) == Total(2, capped=False)
    # No index holds both columns: the count reads rows and stops at READ_COUNT_CAP.
    charged = Condition(FieldRef("duration"), ">=", Value(0.0))
    updated = Condition(FieldRef("updated"), "!=", Value(""))
    read = ListQuery(filter=Junction("and", (charged, updated)), limit=1)
    assert total(bob, read) == Total(2, capped=True)
    assert total(carol, read) == Total(2, capped=False)
    assert total(alice, ListQuery(limit=2, count_total=False)) is None


def test_telemetry_is_pruned_by_event_time(repos: Repositories) -> None:
    qpu = _qpu(repos)
    driver = repos.qpus.insert_driver(qpu, NewDriver("d", "mock", "python", "t" * 64))
    for days in (4, 3, 2):
        repos.telemetry.insert(driver.id, qpu, "temp", "{}", NOW - timedelta(days=days))
    repos.telemetry.insert(driver.id, qpu, "temp", "{}", NOW)
    # In batches, oldest first: a backlog never goes in one long transaction.
    assert repos.telemetry.delete_before(NOW - timedelta(days=1), limit=2) == 2
    assert _event_times(repos) == [NOW, NOW - timedelta(days=2)]
    assert repos.telemetry.delete_before(NOW - timedelta(days=1), limit=2) == 1
    assert repos.telemetry.delete_before(NOW - timedelta(days=1), limit=2) == 0
    assert _event_times(repos) == [NOW]


def _jobs_of(repos: Repositories, owner: str) -> int:
    page, _ = repos.job_listing.list_jobs_query(owner, ListQuery(limit=100), NOW)
    return len(page)


def _event_times(repos: Repositories) -> list[datetime]:
    events, _ = repos.telemetry_listing.list_events_query(ListQuery(limit=10), NOW)
    return [e.event_time for e in events]


def test_reads_made_while_admitting_a_job_share_its_transaction(
    engine: Engine, repos: Repositories
) -> None:
    user, qpu = _user(repos), _qpu(repos)
    checkouts: list[int] = []
    for pooled in {engine, autocommit_reads(engine)}:  # PostgreSQL reads: the companion's
        event.listen(pooled, "checkout", lambda *_: checkouts.append(1))
    routed: list[str] = []

    def admit(owner: User, pending: int, named: Qpu | None) -> NewJob:
        found = repos.qpus.find("q1")  # routing, as a submit does
        assert found is not None
        routed.append(found.id)
        return NewJob(found.id, '{"circuits": []}', 0)

    stored = repos.jobs.insert(user, None, NOW, admit)
    # the owner's lock, the QPU read and the insert: one pooled connection
    assert len(checkouts) == 1
    assert routed == [qpu]
    assert stored is not None
    assert stored[0].qpu_id == qpu
    # outside a write, a read takes a connection of its own
    assert repos.qpus.find("q1") is not None
    assert len(checkouts) == 2
