"""QPU and driver registry, QPU status and job routing."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from qpi.server.security.tokens import generate_token, hash_token
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.tables import DriverRow, JobRow, QpuRow

DRIVER_KINDS = ("mock", "qiskit_aer", "quantify", "qblox", "presto", "bluefors_gen1", "custom")
MONITOR_KINDS = ("bluefors_gen1",)
DRIVER_LANGUAGES = ("python", "typescript", "go")


def qpu_not_found(key: str) -> NotFoundError:
    """The error for an unknown QPU."""
    return NotFoundError("QPU_NOT_FOUND", f"QPU '{key}' not found.", metadata={"qpu": key})


def find_qpu(s: Session, key: str) -> QpuRow | None:
    """A QPU by id, else by name."""
    return s.get(QpuRow, key) or s.exec(select(QpuRow).where(QpuRow.name == key)).first()


def queue_lengths(s: Session, qpu_ids: Sequence[str]) -> dict[str, int]:
    """Pending + running jobs per QPU."""
    if not qpu_ids:
        return {}
    rows = s.exec(
        select(JobRow.qpu_id, func.count())
        .where(col(JobRow.qpu_id).in_(qpu_ids), col(JobRow.state).in_(("pending", "running")))
        .group_by(JobRow.qpu_id)
    ).all()
    return {qpu_id: int(n) for qpu_id, n in rows}


class QpuService:
    """Registry of QPUs and drivers."""

    def __init__(self, db: Database, clock: Clock, events: EventBus, ca_fingerprint: str) -> None:
        self._db = db
        self._clock = clock
        self._events = events
        self.ca_fingerprint = ca_fingerprint

    def get(self, key: str) -> tuple[QpuRow, int]:
        """A QPU by id or name, with its queue length."""
        with self._db.session() as s:
            qpu = find_qpu(s, key)
            if qpu is None:
                raise qpu_not_found(key)
            return qpu, queue_lengths(s, [qpu.id]).get(qpu.id, 0)

    def list_qpus(
        self, online_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[QpuRow, int]], int]:
        """QPUs by name with queue lengths."""
        with self._db.session() as s:
            query = select(QpuRow)
            if online_only:
                query = query.where(QpuRow.status == "online")
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = list(s.exec(query.order_by(col(QpuRow.name)).offset(offset).limit(limit)).all())
            lengths = queue_lengths(s, [q.id for q in rows])
        return [(q, lengths.get(q.id, 0)) for q in rows], int(total)

    def create(
        self,
        who: Principal,
        name: str,
        *,
        enabled: bool,
        num_qubits: int,
        coupling_map: list[tuple[int, int]],
        native_gates: list[str],
        create_driver: bool,
        driver_kind: str,
    ) -> tuple[QpuRow, DriverRow | None, str]:
        """Registers a QPU (and optionally its first driver); returns the raw driver token."""
        who.require_admin()
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidArgumentError(
                "INVALID_FIELD", "A QPU needs a name (1-200 characters).", field="name"
            )
        if num_qubits < 0:
            raise InvalidArgumentError(
                "INVALID_FIELD", "num_qubits must not be negative.", field="num_qubits"
            )
        qpu = QpuRow(
            name=name,
            enabled=enabled,
            num_qubits=num_qubits,
            coupling_map_json=json.dumps(coupling_map),
            native_gates_json=json.dumps(native_gates),
        )
        driver: DriverRow | None = None
        raw = ""
        try:
            with self._db.session() as s:
                s.add(qpu)
                s.flush()
                if create_driver:
                    driver, raw = self._new_driver(
                        qpu.id, f"{name}-driver", driver_kind or "mock", "python"
                    )
                    s.add(driver)
                s.commit()
        except IntegrityError as exc:
            raise AlreadyExistsError(
                "QPU_NAME_TAKEN", f"A QPU named '{name}' already exists.", metadata={"name": name}
            ) from exc
        self._events.publish("qpu", qpu.id)
        return qpu, driver, raw

    def update(self, who: Principal, key: str, fields: dict[str, object]) -> QpuRow:
        """Changes name, enabled, num_qubits, coupling_map or native_gates."""
        who.require_admin()
        with self._db.session() as s:
            qpu = find_qpu(s, key)
            if qpu is None:
                raise qpu_not_found(key)
            if "name" in fields:
                qpu.name = str(fields["name"]).strip()
            if "num_qubits" in fields:
                qpu.num_qubits = int(str(fields["num_qubits"]))
            if "coupling_map" in fields:
                qpu.coupling_map_json = json.dumps(fields["coupling_map"])
            if "native_gates" in fields:
                qpu.native_gates_json = json.dumps(fields["native_gates"])
            if "enabled" in fields:
                qpu.enabled = bool(fields["enabled"])
            qpu.updated = self._clock.now()
            s.add(qpu)
            try:
                s.commit()
            except IntegrityError as exc:
                raise AlreadyExistsError(
                    "QPU_NAME_TAKEN",
                    f"A QPU named '{qpu.name}' already exists.",
                    metadata={"name": qpu.name},
                ) from exc
        self._events.publish("qpu", qpu.id)
        self._events.publish("dispatch", qpu.id)
        if "enabled" in fields:
            self._events.publish("qpu_toggled", qpu.id)
        return qpu

    def set_status(self, qpu_id: str, connected_executors: int, executor: str = "") -> None:
        """Derives and stores a QPU's status from its connected executing drivers."""
        with self._db.session() as s:
            qpu = s.get(QpuRow, qpu_id)
            if qpu is None:
                return
            status = "online" if connected_executors > 0 and qpu.enabled else "offline"
            if qpu.status == status and (not executor or qpu.executor == executor):
                return
            qpu.status = status
            if executor:
                qpu.executor = executor
            qpu.updated = self._clock.now()
            s.add(qpu)
            s.commit()
        self._events.publish("qpu", qpu_id)

    def learn_capabilities(self, qpu_id: str, num_qubits: int, native_gates: list[str]) -> None:
        """Fills in qubit count and gates a driver reports, when the admin left them unset."""
        with self._db.session() as s:
            qpu = s.get(QpuRow, qpu_id)
            if qpu is None:
                return
            changed = False
            if num_qubits > 0 and qpu.num_qubits == 0:
                qpu.num_qubits, changed = num_qubits, True
            if native_gates and qpu.native_gates_json == "[]":
                qpu.native_gates_json, changed = json.dumps(native_gates), True
            if changed:
                s.add(qpu)
                s.commit()

    def delete(self, who: Principal, key: str) -> None:
        """Removes a QPU with its drivers, bookings and jobs."""
        who.require_admin()
        with self._db.session() as s:
            qpu = find_qpu(s, key)
            if qpu is None:
                raise qpu_not_found(key)
            s.delete(qpu)
            s.commit()
        self._events.publish("qpu", qpu.id)

    def route(self, key: str, qubits_needed: int) -> QpuRow:
        """Chooses the QPU for a job (see :meth:`route_in`)."""
        with self._db.session() as s:
            return self.route_in(s, key, qubits_needed)

    @staticmethod
    def route_in(s: Session, key: str, qubits_needed: int) -> QpuRow:
        """Chooses the QPU for a job: the named one, else the least-loaded eligible one.

        Routing rule for jobs that name no QPU: among enabled QPUs whose qubit count is
        unknown (0) or large enough, prefer online ones, then the shortest queue, then the
        name. A job for a known but disabled QPU is refused.
        """
        if key:
            qpu = find_qpu(s, key)
            if qpu is None:
                raise qpu_not_found(key)
            if not qpu.enabled:
                raise FailedPreconditionError(
                    "QPU_DISABLED",
                    f"QPU '{qpu.name}' is disabled by an administrator.",
                    metadata={"qpu": qpu.name},
                )
            if qpu.num_qubits and qubits_needed > qpu.num_qubits:
                raise InvalidArgumentError(
                    "INVALID_FIELD",
                    f"The job needs {qubits_needed} qubits but QPU '{qpu.name}' "
                    f"has {qpu.num_qubits}.",
                    field="circuits",
                    metadata={"needed": qubits_needed, "available": qpu.num_qubits},
                )
            return qpu
        candidates = [
            q
            for q in s.exec(select(QpuRow).where(QpuRow.enabled == True)).all()  # noqa: E712
            if q.num_qubits == 0 or q.num_qubits >= qubits_needed
        ]
        if not candidates:
            raise FailedPreconditionError(
                "NO_ELIGIBLE_QPU",
                f"No enabled QPU can run a job needing {qubits_needed} qubits.",
                metadata={"needed": qubits_needed},
            )
        lengths = queue_lengths(s, [q.id for q in candidates])
        return min(candidates, key=lambda q: (q.status != "online", lengths.get(q.id, 0), q.name))

    # -- drivers ----------------------------------------------------------------------

    def _new_driver(
        self, qpu_id: str, name: str, kind: str, language: str
    ) -> tuple[DriverRow, str]:
        if kind not in DRIVER_KINDS:
            raise InvalidArgumentError("INVALID_FIELD", f'Unknown kind "{kind}".', field="kind")
        if language not in DRIVER_LANGUAGES:
            raise InvalidArgumentError(
                "INVALID_FIELD", f'Unknown language "{language}".', field="language"
            )
        raw = generate_token()
        return DriverRow(
            name=name, qpu_id=qpu_id, kind=kind, language=language, token_hash=hash_token(raw)
        ), raw

    def create_driver(
        self, who: Principal, qpu_key: str, name: str, kind: str, language: str, enabled: bool
    ) -> tuple[DriverRow, str]:
        """Registers a driver for a QPU; returns the raw token once."""
        who.require_admin()
        with self._db.session() as s:
            qpu = find_qpu(s, qpu_key)
            if qpu is None:
                raise qpu_not_found(qpu_key)
            driver, raw = self._new_driver(
                qpu.id, name.strip() or f"{qpu.name}-driver", kind or "mock", language or "python"
            )
            driver.enabled = enabled
            s.add(driver)
            s.commit()
        return driver, raw

    def get_driver(self, who: Principal, driver_id: str) -> DriverRow:
        """One driver (administrators)."""
        who.require_admin()
        with self._db.session() as s:
            row = s.get(DriverRow, driver_id)
        if row is None:
            raise NotFoundError("DRIVER_NOT_FOUND", "Driver not found.", metadata={"id": driver_id})
        return row

    def list_drivers(self, who: Principal, qpu_id: str, offset: int, limit: int) -> list[DriverRow]:
        """Drivers (administrators)."""
        who.require_admin()
        with self._db.session() as s:
            query = select(DriverRow)
            if qpu_id:
                query = query.where(DriverRow.qpu_id == qpu_id)
            return list(
                s.exec(query.order_by(col(DriverRow.created)).offset(offset).limit(limit)).all()
            )

    def update_driver(self, who: Principal, driver_id: str, fields: dict[str, object]) -> DriverRow:
        """Renames or enables/disables a driver."""
        self.get_driver(who, driver_id)
        with self._db.session() as s:
            row = s.get(DriverRow, driver_id)
            assert row is not None
            if "name" in fields:
                row.name = str(fields["name"]).strip()
            if "enabled" in fields:
                row.enabled = bool(fields["enabled"])
                if not row.enabled:
                    row.status = "offline"
            s.add(row)
            s.commit()
        self._events.publish("driver", row.id)
        return row

    def delete_driver(self, who: Principal, driver_id: str) -> None:
        """Removes a driver registration."""
        self.get_driver(who, driver_id)
        with self._db.session() as s:
            row = s.get(DriverRow, driver_id)
            if row is not None:
                s.delete(row)
                s.commit()
        self._events.publish("driver", driver_id)

    def mark_driver(
        self,
        driver_id: str,
        *,
        online: bool,
        name: str = "",
        host: str = "",
        version: str = "",
        transport: str = "",
    ) -> None:
        """Records a driver's connection state."""
        with self._db.session() as s:
            row = s.get(DriverRow, driver_id)
            if row is None:
                return
            row.status = "online" if online else "offline"
            row.last_seen = self._clock.now()
            if name:
                row.name = name[:200]
            if host:
                row.host = host[:255]
            if version:
                row.version = version[:100]
            if transport:
                row.transport = transport
            s.add(row)
            s.commit()

    def reset_statuses(self) -> None:
        """At start-up nothing is connected to this server yet."""
        with self._db.session() as s:
            for row in s.exec(select(DriverRow).where(DriverRow.status != "offline")).all():
                row.status = "offline"
                s.add(row)
            for qpu in s.exec(select(QpuRow).where(QpuRow.status != "offline")).all():
                qpu.status = "offline"
                s.add(qpu)
            s.commit()
