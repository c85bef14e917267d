"""QPUs and their drivers: registry, status and the queue lengths routing looks at."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.domain.models import Driver, Qpu
from qpi.server.store.base import DuplicateKeyError, SqlRepository, capped_count
from qpi.server.store.tables import JOBS, QPUS, DriverRow, QpuRow


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

    def fill_capabilities(self, qpu_id: str, num_qubits: int, native_gates: Sequence[str]) -> None:
        """Sets qubit count and native gates where the administrator left them unset."""
        ...

    def delete_qpu(self, key: str) -> Qpu | None:
        """Deletes a QPU with its drivers, bookings and jobs; the deleted QPU or None."""
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


def to_qpu(row: QpuRow | Any) -> Qpu:
    """The domain record of a QPU row."""
    return Qpu(
        id=row.id,
        name=row.name,
        enabled=row.enabled,
        status=row.status,
        num_qubits=row.num_qubits,
        coupling_map=tuple((int(a), int(b)) for a, b in json.loads(row.coupling_map_json)),
        native_gates=tuple(str(g) for g in json.loads(row.native_gates_json)),
        executor=row.executor,
        created=row.created,
        updated=row.updated,
    )


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


_QPU_BY_ID = core_select(QPUS).where(QPUS.c.id == bindparam("key"))
_QPU_BY_NAME = core_select(QPUS).where(QPUS.c.name == bindparam("key"))


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


def _queue_lengths(s: Session, qpu_ids: Sequence[str]) -> dict[str, int]:
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
    lengths = _queue_lengths(s, [q.id for q in rows])
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
        # Prebuilt Core statements: this runs on every submit that names its QPU.
        with self._engine.connect() as conn:
            row = conn.execute(_QPU_BY_ID, {"key": key}).first()
            if row is None:
                row = conn.execute(_QPU_BY_NAME, {"key": key}).first()
        return to_qpu(row) if row else None

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
            if name is not None:
                row.name = name
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

    def fill_capabilities(self, qpu_id: str, num_qubits: int, native_gates: Sequence[str]) -> None:
        with self._session() as s:
            row = s.get(QpuRow, qpu_id)
            if row is None:
                return
            changed = False
            if num_qubits > 0 and row.num_qubits == 0:
                row.num_qubits, changed = num_qubits, True
            if native_gates and row.native_gates_json == "[]":
                row.native_gates_json, changed = json.dumps(list(native_gates)), True
            if changed:
                s.add(row)
                s.commit()

    def delete_qpu(self, key: str) -> Qpu | None:
        with self._session() as s:
            row = _find(s, key)
            if row is None:
                return None
            s.delete(row)
            s.commit()
        return to_qpu(row)

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
