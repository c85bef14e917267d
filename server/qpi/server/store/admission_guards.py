"""A submit's admission rules as SQL conditions, for an insert that checks them itself.

A submit normally reads its owner (locked), the owner's queue and the QPU it names, lets
the use case admit the job, then inserts it: two round trips to PostgreSQL. Once the
QPU's row is known from an earlier submit, the job can be built first and stored by one
``INSERT ... SELECT ... WHERE`` whose conditions are the owner's rules and "the QPU's row
is still the one the job was built from": the owner's lock, the insert and the COMMIT
then travel in one round trip (see ``SqlJobRepository.insert``). When the conditions
refuse, nothing was written and the submit goes the usual way, which says why.

The owner's rules here mirror the domain's: :func:`~qpi.server.domain.jobs.
ensure_can_submit`, :func:`~qpi.server.domain.accounting.ensure_can_queue` and
:func:`~qpi.server.domain.accounting.can_reserve`.
``tests/integration/store/test_admission_guards.py`` evaluates both forms over a table
of cases on each store, so a rule changed on one side only fails there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    or_,
    text,
)
from sqlalchemy import select as core_select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.expression import Insert

from qpi.server.store.base import capped_count, in_state
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import JOBS, QPUS, USERS

J, U = JOBS.c, USERS.c


GENERIC_PLANS = Prepared(text("SET LOCAL plan_cache_mode = force_generic_plan"))
"""Sent first in a guarded insert's transaction (PostgreSQL). Left to choose, PostgreSQL
kept planning the guarded insert afresh for each submit's values: 0.15-0.2 ms of planning,
as long as running it (measured with the table analysed: 1.05-1.19 ms per transaction
against 0.89-0.97 ms with generic plans). Its conditions are key lookups and capped
index reads whose best index does not depend on the values bound (the states in them are
written into the SQL or bound alike for all), so one plan serves every owner and QPU
(tests/integration/store/test_open_job_plans.py shows which indexes it uses)."""


def may_submit(balance: Any, is_superuser: Any) -> ColumnElement[bool]:
    """``ensure_can_submit`` passes: a superuser, or a positive balance."""
    return or_(is_superuser, balance > 0)


def may_queue(pending: Any, cap: Any, is_superuser: Any) -> ColumnElement[bool]:
    """``ensure_can_queue`` passes or is not asked: no cap (0), a superuser, or fewer
    pending jobs than the cap."""
    return or_(cap == 0, is_superuser, pending < cap)


def may_reserve(balance: Any, reserved: Any, estimate: Any, is_superuser: Any) -> Any:
    """``can_reserve``: a superuser, or a positive remainder that covers the estimate."""
    left = balance - reserved
    return or_(is_superuser, and_(left > 0, estimate <= left))


class _Typed(ColumnElement[Any]):
    """A bound value in an ``INSERT ... SELECT`` list. PostgreSQL types an untyped
    parameter there as text (and then refuses it for a timestamp column), so it gets a
    CAST to the column's type; SQLite needs none, and its CAST to DATETIME would turn a
    timestamp's text into a number."""

    inherit_cache = True

    def __init__(self, bind: BindParameter[Any]) -> None:
        self.bind = bind
        self.type = bind.type


@compiles(_Typed)
def _plain(element: _Typed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.bind, **kw)


@compiles(_Typed, "postgresql")
def _cast(element: _Typed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(cast(element.bind, element.type), **kw)


def guarded_insert(columns: Sequence[Any], *, leased: bool) -> Insert:
    """``INSERT INTO jobs (columns) SELECT :values WHERE <admitted> RETURNING id``.

    Binds each column's value by its name, plus ``cap`` (the owner's pending cap, 0 for
    none), ``qpu_<column>`` for every column of the QPU row the job was built from, and,
    `leased` (a job stored running on a driver's free slot): the lease's own conditions,
    nothing pending on the QPU and the owner able to reserve the job's estimate.

    Read with the owner's row locked by an earlier statement of the transaction, every
    condition sees the owner's earlier submits (READ COMMITTED takes this statement's
    snapshot after the lock).
    """
    user = bindparam("user_id", type_=J.user_id.type)
    cap = cast(bindparam("cap", type_=BigInteger), BigInteger)
    # As the repository's own count (jobs._PENDING_OF): the state bound, not written, so
    # that ix_jobs_user_state_qpu_created serves it in its own order and the count stops
    # at the cap (the partial index of pending jobs would walk every owner's queue).
    pending = capped_count(
        core_select(J.id)
        .where(J.user_id == user, J.state == "pending")
        .order_by(J.qpu_id, J.created, J.id),
        cap,
    ).scalar_subquery()
    owner = [U.id == user, may_submit(U.qpu_seconds, U.is_superuser)]
    owner.append(may_queue(pending, cap, U.is_superuser))
    conditions: list[Any] = []
    if leased:
        running = JOBS.alias("running")
        reserved = (
            core_select(func.coalesce(func.sum(running.c.estimated_seconds), 0.0))
            .where(running.c.user_id == user, in_state(running.c.state, "running"))
            .scalar_subquery()
        )
        estimate = bindparam("estimated_seconds", type_=J.estimated_seconds.type)
        owner.append(may_reserve(U.qpu_seconds, reserved, estimate, U.is_superuser))
        queued = JOBS.alias("queued")
        conditions.append(
            ~exists().where(
                queued.c.qpu_id == bindparam("qpu_id", type_=J.qpu_id.type),
                in_state(queued.c.state, "pending"),
            )
        )
    # No condition on the request id: a used one fails the insert on the unique index
    # (the caller then looks the earlier job up), which costs nothing when it is new.
    conditions += [exists().where(*owner), exists().where(*_unchanged_qpu())]
    values = [_Typed(bindparam(c.name, type_=c.type)) for c in columns]
    return (
        insert(JOBS)
        .from_select([c.name for c in columns], core_select(*values).where(*conditions))
        .returning(J.id)
    )


def qpu_params(row: Sequence[Any]) -> dict[str, Any]:
    """The ``qpu_<column>`` values of :func:`guarded_insert` for a QPU row read whole."""
    return {f"qpu_{c.name}": value for c, value in zip(QPUS.c, row, strict=True)}


def _unchanged_qpu() -> list[Any]:
    """The QPU's row equals the one bound, column by column (id first: the key)."""
    same = []
    for column in QPUS.c:
        bound = bindparam(f"qpu_{column.name}", type_=column.type)
        same.append(column.is_not_distinct_from(bound) if column.nullable else column == bound)
    return same
