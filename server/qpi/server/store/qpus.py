"""QPUs and their drivers: registry, status and the queue lengths routing looks at."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.domain.models import (
    Driver,
    Job,
    Qpu,
    ReportedDevice,
)
from qpi.server.store.base import DuplicateKeyError, SqlRepository, capped_count
from qpi.server.store.jobs import to_job
from qpi.server.store.qpu_rows import QPU_BY_KEY, capabilities_json, qpu_of_row, to_qpu
from qpi.server.store.tables import JOBS, DriverRow, JobRow, QpuRow


@dataclass(frozen=True)
class NewDriver:
    """A driver registration to store (the raw token is never stored)."""

    name: str
    kind: str
    language: str
    token_hash: str
    enabled: bool = True


class QpuRepository(Protocol):
    """QPUs, drivers and per-QPU queue lengths."""

    def find(self, key: str) -> Qpu | None:
        """A QPU by id, else by name."""
        ...

    def get_with_queue(self, key: str) -> tuple[Qpu, int] | None:
        """A QPU by id or name with its queue length (pending + running jobs)."""
        ...

    def list_qpus(
        self, online_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[Qpu, int]], int]:
        """QPUs by name with queue lengths, and the total count."""
        ...

    def routing_candidates(self, qubits_needed: int) -> list[tuple[Qpu, int]]:
        """Enabled QPUs of unknown (0) or large enough width, with queue lengths."""
        ...

    def insert_qpu(
        self,
        name: str,
        *,
        enabled: bool,
        num_qubits: int,
        coupling_map: Sequence[Sequence[int]],
        native_gates: Sequence[str],
        driver: NewDriver | None,
    ) -> tuple[Qpu, Driver | None]:
        """Adds a QPU (and its first driver); DuplicateKeyError if the name is taken."""
        ...

    def update_qpu(
        self,
        key: str,
        now: datetime,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        num_qubits: int | None = None,
        coupling_map: Sequence[Sequence[int]] | None = None,
        native_gates: Sequence[str] | None = None,
    ) -> Qpu | None:
        """Changes the given fields (None: unchanged); None if there is no such QPU.

        DuplicateKeyError if the new name is taken.
        """
        ...

    def set_status(self, qpu_id: str, connected: bool, executor: str, now: datetime) -> bool:
        """Stores "online" (connected and enabled) or "offline" and the executor kind;
        whether anything changed."""
        ...

    def learn_device(self, qpu_id: str, reported: ReportedDevice) -> bool:
        """Stores what an executing driver reported (see `SqlQpuRepository.learn_device`);
        whether anything changed."""
        ...

    def delete_qpu(self, key: str, now: datetime, error: str) -> tuple[Qpu, list[Job]] | None:
        """Deletes a QPU with its drivers and bookings; its jobs stay, detached from it.

        Jobs still pending or running are cancelled with `error` as the reason. Returns
        the deleted QPU and the jobs cancelled, or None for an unknown QPU.
        """
        ...

    def reset_statuses(self) -> None:
        """Marks every QPU and driver offline."""
        ...

    def insert_driver(self, qpu_id: str, driver: NewDriver) -> Driver:
        """Adds a driver registration."""
        ...

    def get_driver(self, driver_id: str) -> Driver | None:
        """One driver."""
        ...

    def driver_by_token(self, token_hash: str) -> Driver | None:
        """The driver whose access token has this hash."""
        ...

    def list_drivers(self, qpu_id: str, offset: int, limit: int) -> list[Driver]:
        """Drivers in registration order, optionally of one QPU."""
        ...

    def update_driver(
        self, driver_id: str, *, name: str | None = None, enabled: bool | None = None
    ) -> Driver | None:
        """Renames or enables/disables a driver (disabling also marks it offline)."""
        ...

    def delete_driver(self, driver_id: str) -> bool:
        """Removes a driver registration; False if there was none."""
        ...

    def mark_driver(
        self,
        driver_id: str,
        now: datetime,
        *,
        online: bool,
        name: str = "",
        host: str = "",
        version: str = "",
        transport: str = "",
    ) -> None:
        """Records a driver's connection state and what it said about itself."""
        ...


def to_driver(row: DriverRow) -> Driver:
    """The domain record of a driver row."""
    return Driver(
        id=row.id,
        name=row.name,
        qpu_id=row.qpu_id,
        kind=row.kind,
        language=row.language,
        enabled=row.enabled,
        status=row.status,
        host=row.host,
        version=row.version,
        transport=row.transport,
        last_seen=row.last_seen,
        created=row.created,
    )


def _find(s: Session, key: str) -> QpuRow | None:
    return s.get(QpuRow, key) or s.exec(select(QpuRow).where(QpuRow.name == key)).first()


QUEUE_LENGTH_CAP = 1_000
"""Queue lengths are counted up to this many jobs (routing and display): beyond it every
queue is simply "long", and the count costs the same at 10^3 or 10^6 queued jobs."""


_QUEUED = capped_count(
    core_select(JOBS.c.id)
    .where(JOBS.c.qpu_id == bindparam("qpu_id"), JOBS.c.state == bindparam("state"))
    # The order of ix_jobs_qpu_state_created_id: an index range that stops at the cap,
    # never a sequential scan that must pass every finished job first.
    .order_by(JOBS.c.created, JOBS.c.id),
    bindparam("cap"),
)


def queue_lengths(s: Session | Connection, qpu_ids: Sequence[str]) -> dict[str, int]:
    """Pending plus running jobs of each QPU, each counted up to QUEUE_LENGTH_CAP."""
    lengths: dict[str, int] = {}
    for qpu_id in qpu_ids:
        # Two capped index ranges of (qpu_id, state, created, id), not a count of the queue.
        total = 0
        for state in ("pending", "running"):
            found = s.execute(_QUEUED, {"qpu_id": qpu_id, "state": state, "cap": QUEUE_LENGTH_CAP})
            total += int(found.scalar_one())
        lengths[qpu_id] = min(total, QUEUE_LENGTH_CAP)
    return lengths


def _with_lengths(s: Session, rows: Sequence[QpuRow]) -> list[tuple[Qpu, int]]:
    lengths = queue_lengths(s, [q.id for q in rows])
    return [(to_qpu(q), lengths.get(q.id, 0)) for q in rows]


def _driver_row(qpu_id: str, driver: NewDriver) -> DriverRow:
    return DriverRow(
        name=driver.name,
        qpu_id=qpu_id,
        kind=driver.kind,
        language=driver.language,
        token_hash=driver.token_hash,
        enabled=driver.enabled,
    )


class SqlQpuRepository(SqlRepository):
    """QpuRepository on SQLite or PostgreSQL."""

    def find(self, key: str) -> Qpu | None:
        # A prebuilt Core statement, in the submit's own transaction when one is lent:
        # this runs on every submit that names its QPU.
        with self._reading() as conn:
            row = QPU_BY_KEY.first(conn, {"key": key})
        return qpu_of_row(row) if row else None

    def get_with_queue(self, key: str) -> tuple[Qpu, int] | None:
        with self._session() as s:
            row = _find(s, key)
            return _with_lengths(s, [row])[0] if row else None

    def list_qpus(
        self, online_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[Qpu, int]], int]:
        query = select(QpuRow)
        if online_only:
            query = query.where(QpuRow.status == "online")
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(col(QpuRow.name)).offset(offset).limit(limit)).all()
            return _with_lengths(s, rows), int(total)

    def routing_candidates(self, qubits_needed: int) -> list[tuple[Qpu, int]]:
        with self._session() as s:
            rows = [
                q
                for q in s.exec(select(QpuRow).where(QpuRow.enabled == True)).all()  # noqa: E712
                if q.num_qubits == 0 or q.num_qubits >= qubits_needed
            ]
            return _with_lengths(s, rows)

    def insert_qpu(
        self,
        name: str,
        *,
        enabled: bool,
        num_qubits: int,
        coupling_map: Sequence[Sequence[int]],
        native_gates: Sequence[str],
        driver: NewDriver | None,
    ) -> tuple[Qpu, Driver | None]:
        qpu = QpuRow(
            name=name,
            enabled=enabled,
            num_qubits=num_qubits,
            coupling_map_json=json.dumps([list(e) for e in coupling_map]),
            native_gates_json=json.dumps(list(native_gates)),
        )
        driver_row: DriverRow | None = None
        try:
            with self._session() as s:
                s.add(qpu)
                s.flush()
                if driver is not None:
                    driver_row = _driver_row(qpu.id, driver)
                    s.add(driver_row)
                s.commit()
        except IntegrityError as exc:
            raise DuplicateKeyError(name) from exc
        return to_qpu(qpu), to_driver(driver_row) if driver_row else None

    def update_qpu(
        self,
        key: str,
        now: datetime,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        num_qubits: int | None = None,
        coupling_map: Sequence[Sequence[int]] | None = None,
        native_gates: Sequence[str] | None = None,
    ) -> Qpu | None:
        with self._session() as s:
            row = _find(s, key)
            if row is None:
                return None
            if name is not None and name != row.name:
                row.name = name
                # Jobs carry their QPU's name (listings filter and sort it by index).
                s.execute(update(JobRow).where(col(JobRow.qpu_id) == row.id).values(qpu_name=name))
            if num_qubits is not None:
                row.num_qubits = num_qubits
            if coupling_map is not None:
                row.coupling_map_json = json.dumps([list(e) for e in coupling_map])
            if native_gates is not None:
                row.native_gates_json = json.dumps(list(native_gates))
            if enabled is not None:
                row.enabled = enabled
            row.updated = now
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:
                raise DuplicateKeyError(row.name) from exc
        return to_qpu(row)

    def set_status(self, qpu_id: str, connected: bool, executor: str, now: datetime) -> bool:
        with self._session() as s:
            row = s.get(QpuRow, qpu_id)
            if row is None:
                return False
            status = "online" if connected and row.enabled else "offline"
            if row.status == status and (not executor or row.executor == executor):
                return False
            row.status = status
            if executor:
                row.executor = executor
            row.updated = now
            s.add(row)
            s.commit()
        return True

    def learn_device(self, qpu_id: str, reported: ReportedDevice) -> bool:
        """Merges a driver's report into the QPU, the device being the authority on itself.

        Capabilities (meas levels, calibration) are replaced. A reported coupling map
        replaces the stored one (an empty report means all-to-all and keeps what the
        administrator set). The qubit count is filled when unset and lowered to the
        device's when the administrator registered more than it has. Native gates are
        filled when unset.
        """
        with self._session() as s:
            row = s.get(QpuRow, qpu_id)
            if row is None:
                return False
            before = (row.num_qubits, row.coupling_map_json, row.native_gates_json)
            before_caps = row.capabilities_json
            if reported.num_qubits > 0 and (
                row.num_qubits == 0 or reported.num_qubits < row.num_qubits
            ):
                row.num_qubits = reported.num_qubits
            if reported.coupling_map:
                row.coupling_map_json = json.dumps([list(e) for e in reported.coupling_map])
            if reported.native_gates and row.native_gates_json == "[]":
                row.native_gates_json = json.dumps(list(reported.native_gates))
            row.capabilities_json = capabilities_json(reported.capabilities)
            after = (row.num_qubits, row.coupling_map_json, row.native_gates_json)
            if after == before and row.capabilities_json == before_caps:
                return False
            s.add(row)
            s.commit()
        return True

    def delete_qpu(self, key: str, now: datetime, error: str) -> tuple[Qpu, list[Job]] | None:
        with self._session() as s:
            row = _find(s, key)
            if row is None:
                return None
            unfinished = list(
                s.exec(
                    select(JobRow.id).where(
                        JobRow.qpu_id == row.id, col(JobRow.state).in_(("pending", "running"))
                    )
                ).all()
            )
            if unfinished:
                s.execute(
                    update(JobRow)
                    .where(col(JobRow.id).in_(unfinished))
                    .values(
                        state="cancelled",
                        error=error,
                        lease_driver_id=None,
                        lease_session=None,
                        lease_expires_at=None,
                        finished_at=now,
                        updated=now,
                    )
                )
            # Done here rather than left to ON DELETE SET NULL, so history survives even
            # on a connection without foreign-key enforcement.
            s.execute(update(JobRow).where(col(JobRow.qpu_id) == row.id).values(qpu_id=None))
            s.delete(row)
            s.commit()
            failed = s.exec(select(JobRow).where(col(JobRow.id).in_(unfinished))).all()
            return to_qpu(row), [to_job(j) for j in failed]

    def reset_statuses(self) -> None:
        with self._session() as s:
            for driver in s.exec(select(DriverRow).where(DriverRow.status != "offline")).all():
                driver.status = "offline"
                s.add(driver)
            for qpu in s.exec(select(QpuRow).where(QpuRow.status != "offline")).all():
                qpu.status = "offline"
                s.add(qpu)
            s.commit()

    def insert_driver(self, qpu_id: str, driver: NewDriver) -> Driver:
        row = _driver_row(qpu_id, driver)
        with self._session() as s:
            s.add(row)
            s.commit()
        return to_driver(row)

    def get_driver(self, driver_id: str) -> Driver | None:
        with self._session() as s:
            row = s.get(DriverRow, driver_id)
        return to_driver(row) if row else None

    def driver_by_token(self, token_hash: str) -> Driver | None:
        with self._session() as s:
            row = s.exec(select(DriverRow).where(DriverRow.token_hash == token_hash)).first()
        return to_driver(row) if row else None

    def list_drivers(self, qpu_id: str, offset: int, limit: int) -> list[Driver]:
        query = select(DriverRow)
        if qpu_id:
            query = query.where(DriverRow.qpu_id == qpu_id)
        with self._session() as s:
            rows = s.exec(query.order_by(col(DriverRow.created)).offset(offset).limit(limit)).all()
        return [to_driver(r) for r in rows]

    def update_driver(
        self, driver_id: str, *, name: str | None = None, enabled: bool | None = None
    ) -> Driver | None:
        with self._session() as s:
            row = s.get(DriverRow, driver_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            if enabled is not None:
                row.enabled = enabled
                if not enabled:
                    row.status = "offline"
            s.add(row)
            s.commit()
        return to_driver(row)

    def delete_driver(self, driver_id: str) -> bool:
        with self._session() as s:
            row = s.get(DriverRow, driver_id)
            if row is None:
                return False
            s.delete(row)
            s.commit()
        return True

    def mark_driver(
        self,
        driver_id: str,
        now: datetime,
        *,
        online: bool,
        name: str = "",
        host: str = "",
        version: str = "",
        transport: str = "",
    ) -> None:
        with self._session() as s:
            row = s.get(DriverRow, driver_id)
            if row is None:
                return
            row.status = "online" if online else "offline"
            row.last_seen = now
            if name:
                row.name = name
            if host:
                row.host = host
            if version:
                row.version = version
            if transport:
                row.transport = transport
            s.add(row)
            s.commit()
