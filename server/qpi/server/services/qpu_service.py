"""QPU and driver registry, QPU status and job routing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from qpi.server.domain.listing import ListQuery, Total
from qpi.server.domain.models import Driver, Qpu, ReportedDevice
from qpi.server.security.tokens import generate_token, hash_token
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.base import DuplicateKeyError
from qpi.server.store.qpu_listing import QpuListing
from qpi.server.store.qpus import NewDriver, QpuRepository

DRIVER_KINDS = ("mock", "qiskit_aer", "quantify", "qblox", "presto", "bluefors_gen1", "custom")
MONITOR_KINDS = ("bluefors_gen1",)
DRIVER_LANGUAGES = ("python", "typescript", "go")


def qpu_not_found(key: str) -> NotFoundError:
    """The error for an unknown QPU."""
    return NotFoundError("QPU_NOT_FOUND", f"QPU '{key}' not found.", metadata={"qpu": key})


def _name_taken(name: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        "QPU_NAME_TAKEN", f"A QPU named '{name}' already exists.", metadata={"name": name}
    )


def _driver_not_found(driver_id: str) -> NotFoundError:
    return NotFoundError("DRIVER_NOT_FOUND", "Driver not found.", metadata={"id": driver_id})


class QpuService:
    """Registry of QPUs and drivers."""

    def __init__(
        self,
        qpus: QpuRepository,
        clock: Clock,
        events: EventBus,
        ca_fingerprint: str,
        listing: QpuListing | None = None,
    ) -> None:
        self._qpus = qpus
        self._listing = listing
        self._clock = clock
        self._events = events
        self.ca_fingerprint = ca_fingerprint

    def query_qpus(self, query: ListQuery) -> tuple[list[tuple[Qpu, int]], Total | None]:
        """One page of QPUs (public facts) with queue lengths, matching an arbitrary filter
        and order, run in the database."""
        if self._listing is None:
            raise RuntimeError("QpuService was built without a listing")
        return self._listing.list_qpus_query(query, self._clock.now())

    def query_drivers(self, who: Principal, query: ListQuery) -> tuple[list[Driver], Total | None]:
        """One page of drivers matching a query (administrators)."""
        who.require_admin()
        if self._listing is None:
            raise RuntimeError("QpuService was built without a listing")
        return self._listing.list_drivers_query(query, self._clock.now())

    def find(self, key: str) -> Qpu:
        """A QPU by id or name."""
        qpu = self._qpus.find(key)
        if qpu is None:
            raise qpu_not_found(key)
        return qpu

    def get(self, key: str) -> tuple[Qpu, int]:
        """A QPU by id or name, with its queue length."""
        found = self._qpus.get_with_queue(key)
        if found is None:
            raise qpu_not_found(key)
        return found

    def list_qpus(
        self, online_only: bool, offset: int, limit: int
    ) -> tuple[list[tuple[Qpu, int]], int]:
        """QPUs by name with queue lengths."""
        return self._qpus.list_qpus(online_only, offset, limit)

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
    ) -> tuple[Qpu, Driver | None, str]:
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
        new_driver, raw = None, ""
        if create_driver:
            new_driver, raw = _new_driver(f"{name}-driver", driver_kind or "mock", "python")
        try:
            qpu, driver = self._qpus.insert_qpu(
                name,
                enabled=enabled,
                num_qubits=num_qubits,
                coupling_map=coupling_map,
                native_gates=native_gates,
                driver=new_driver,
            )
        except DuplicateKeyError as exc:
            raise _name_taken(name) from exc
        self._events.publish("qpu", qpu.id)
        return qpu, driver, raw

    def update(self, who: Principal, key: str, fields: dict[str, object]) -> Qpu:
        """Changes name, enabled, num_qubits, coupling_map or native_gates."""
        who.require_admin()
        name = str(fields["name"]).strip() if "name" in fields else None
        coupling_map = cast("Sequence[Sequence[int]] | None", fields.get("coupling_map"))
        native_gates = cast("Sequence[str] | None", fields.get("native_gates"))
        try:
            qpu = self._qpus.update_qpu(
                key,
                self._clock.now(),
                name=name,
                enabled=bool(fields["enabled"]) if "enabled" in fields else None,
                num_qubits=int(str(fields["num_qubits"])) if "num_qubits" in fields else None,
                coupling_map=coupling_map,
                native_gates=native_gates,
            )
        except DuplicateKeyError as exc:
            raise _name_taken(name if name is not None else key) from exc
        if qpu is None:
            raise qpu_not_found(key)
        self._events.publish("qpu", qpu.id)
        self._events.publish("dispatch", qpu.id)
        if "enabled" in fields:
            self._events.publish("qpu_toggled", qpu.id)
        return qpu

    def set_status(self, qpu_id: str, connected_executors: int, executor: str = "") -> None:
        """Derives and stores a QPU's status from its connected executing drivers."""
        if self._qpus.set_status(qpu_id, connected_executors > 0, executor, self._clock.now()):
            self._events.publish("qpu", qpu_id)

    def learn_device(self, qpu_id: str, reported: ReportedDevice) -> None:
        """Stores what an executing driver reported about its device (hello)."""
        if self._qpus.learn_device(qpu_id, reported):
            self._events.publish("qpu", qpu_id)

    def delete(self, who: Principal, key: str) -> None:
        """Removes a QPU with its drivers and bookings; its jobs stay with their owners.

        Jobs keep the QPU's name (their QPU id becomes empty); those still pending or
        running are cancelled (never charged), since nothing can run them any more.
        Connected drivers are disconnected (the "qpu_deleted" event) and their
        registrations removed.
        """
        who.require_admin()
        qpu = self.find(key)
        error = f"QPU '{qpu.name}' was deleted by an administrator before this job finished."
        deleted = self._qpus.delete_qpu(qpu.id, self._clock.now(), error)
        if deleted is None:
            raise qpu_not_found(key)
        qpu, cancelled = deleted
        for job in cancelled:
            self._events.publish("job", job)
        self._events.publish("qpu", qpu.id)
        self._events.publish("qpu_deleted", qpu)

    def route(self, key: str, qubits_needed: int, named: Qpu | None = None) -> Qpu:
        """Chooses the QPU for a job: the named one (`named`, when the caller read it
        already), else the least-loaded eligible one.

        Routing rule for jobs that name no QPU: among enabled QPUs whose qubit count is
        unknown (0) or large enough, prefer online ones, then the shortest queue, then the
        name. A job for a known but disabled QPU is refused.
        """
        if key:
            qpu = named if named is not None else self.find(key)
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
        candidates = self._qpus.routing_candidates(qubits_needed)
        if not candidates:
            raise FailedPreconditionError(
                "NO_ELIGIBLE_QPU",
                f"No enabled QPU can run a job needing {qubits_needed} qubits.",
                metadata={"needed": qubits_needed},
            )
        best, _ = min(candidates, key=lambda c: (c[0].status != "online", c[1], c[0].name))
        return best

    # -- drivers ----------------------------------------------------------------------

    def create_driver(
        self, who: Principal, qpu_key: str, name: str, kind: str, language: str, enabled: bool
    ) -> tuple[Driver, str]:
        """Registers a driver for a QPU; returns the raw token once."""
        who.require_admin()
        qpu = self.find(qpu_key)
        new_driver, raw = _new_driver(
            name.strip() or f"{qpu.name}-driver", kind or "mock", language or "python", enabled
        )
        return self._qpus.insert_driver(qpu.id, new_driver), raw

    def get_driver(self, who: Principal, driver_id: str) -> Driver:
        """One driver (administrators)."""
        who.require_admin()
        driver = self._qpus.get_driver(driver_id)
        if driver is None:
            raise _driver_not_found(driver_id)
        return driver

    def find_driver(self, driver_id: str) -> Driver | None:
        """A driver registration, for the server's own checks (no caller to authorise)."""
        return self._qpus.get_driver(driver_id)

    def list_drivers(self, who: Principal, qpu_id: str, offset: int, limit: int) -> list[Driver]:
        """Drivers (administrators)."""
        who.require_admin()
        return self._qpus.list_drivers(qpu_id, offset, limit)

    def update_driver(self, who: Principal, driver_id: str, fields: dict[str, object]) -> Driver:
        """Renames or enables/disables a driver."""
        self.get_driver(who, driver_id)
        driver = self._qpus.update_driver(
            driver_id,
            name=str(fields["name"]).strip() if "name" in fields else None,
            enabled=bool(fields["enabled"]) if "enabled" in fields else None,
        )
        if driver is None:
            raise _driver_not_found(driver_id)
        self._events.publish("driver", driver.id)
        return driver

    def delete_driver(self, who: Principal, driver_id: str) -> None:
        """Removes a driver registration."""
        self.get_driver(who, driver_id)
        self._qpus.delete_driver(driver_id)
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
        self._qpus.mark_driver(
            driver_id,
            self._clock.now(),
            online=online,
            name=name[:200],
            host=host[:255],
            version=version[:100],
            transport=transport,
        )

    def reset_statuses(self) -> None:
        """At start-up nothing is connected to this server yet."""
        self._qpus.reset_statuses()


def _new_driver(name: str, kind: str, language: str, enabled: bool = True) -> tuple[NewDriver, str]:
    if kind not in DRIVER_KINDS:
        raise InvalidArgumentError("INVALID_FIELD", f'Unknown kind "{kind}".', field="kind")
    if language not in DRIVER_LANGUAGES:
        raise InvalidArgumentError(
            "INVALID_FIELD", f'Unknown language "{language}".', field="language"
        )
    raw = generate_token()
    return NewDriver(name, kind, language, hash_token(raw), enabled), raw
