"""Persistence of NNG compatibility port allocations (table `nng_ports`).

A repository in the store layer: plain data in and out, no transport or service types.
Each driver owns two ports (role "in": the server's PUSH listener, role "out": its PULL
listener) from the moment it first connects until its registration is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.store.tables import DriverRow, NngPortRow, QpuRow

SessionFactory = Callable[[], Session]

_ALLOCATION_ATTEMPTS = 20


@dataclass(frozen=True)
class NngPorts:
    """A driver's listener ports and message format."""

    driver_id: str
    in_port: int
    out_port: int
    wire: str


@dataclass(frozen=True)
class NngDriver:
    """What a transport needs to know of a driver with ports."""

    driver_id: str
    qpu_id: str
    name: str
    kind: str
    enabled: bool
    qpu_enabled: bool


class PortRangeExhausted(Exception):
    """No free port is left in the configured range."""


class NngPortStore:
    """Allocates, reads and frees NNG listener ports."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def ports_of(self, driver_id: str) -> NngPorts | None:
        """The driver's ports, if it has any."""
        with self._sessions() as s:
            return _ports(s.exec(select(NngPortRow).where(NngPortRow.driver_id == driver_id)))

    def allocate(
        self,
        driver_id: str,
        wire: str,
        start: int,
        end: int,
        usable: Callable[[int], bool],
        avoid: Iterable[int] = (),
    ) -> NngPorts:
        """The driver's ports, allocating the two lowest free ones in [start, end) if needed.

        `usable` is asked about each candidate (e.g. a test bind); `avoid` lists ports
        known to be unusable. A concurrent allocation of the same port (another replica, a
        simultaneous connect) violates the primary key; the loser retries with fresh data.

        Raises:
            PortRangeExhausted: Fewer than two usable ports are free.
        """
        skip = set(avoid)
        for _ in range(_ALLOCATION_ATTEMPTS):
            with self._sessions() as s:
                rows = list(s.exec(select(NngPortRow).where(NngPortRow.driver_id == driver_id)))
                current = _ports(rows)
                if current is not None:
                    return self._with_wire(s, rows, current, wire)
                taken = set(
                    s.exec(
                        select(NngPortRow.port).where(
                            col(NngPortRow.port) >= start, col(NngPortRow.port) < end
                        )
                    )
                )
                chosen = _pick_two(start, end, taken | skip, usable)
                if chosen is None:
                    raise PortRangeExhausted(
                        f"no two free NNG ports left in {start}..{end - 1} ({len(taken)} allocated)"
                    )
                for role, port in zip(("in", "out"), chosen, strict=True):
                    s.add(NngPortRow(port=port, driver_id=driver_id, role=role, wire=wire))
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    continue
                return NngPorts(driver_id, chosen[0], chosen[1], wire)
        raise PortRangeExhausted(f"NNG port allocation kept colliding in {start}..{end - 1}")

    @staticmethod
    def _with_wire(s: Session, rows: list[NngPortRow], ports: NngPorts, wire: str) -> NngPorts:
        if ports.wire == wire:
            return ports
        for row in rows:
            row.wire = wire
            s.add(row)
        s.commit()
        return NngPorts(ports.driver_id, ports.in_port, ports.out_port, wire)

    def release(self, driver_id: str) -> None:
        """Frees a driver's ports (e.g. one of them turned out to be bound elsewhere)."""
        with self._sessions() as s:
            for row in s.exec(select(NngPortRow).where(NngPortRow.driver_id == driver_id)):
                s.delete(row)
            s.commit()

    def driver(self, driver_id: str) -> NngDriver | None:
        """The registration behind a driver id, with its QPU's switch."""
        with self._sessions() as s:
            found = s.exec(
                select(DriverRow, QpuRow)
                .join(QpuRow, col(QpuRow.id) == col(DriverRow.qpu_id))
                .where(DriverRow.id == driver_id)
            ).first()
        if found is None:
            return None
        d, q = found
        return NngDriver(d.id, d.qpu_id, d.name, d.kind, d.enabled, q.enabled)

    def enabled_assignments(self) -> list[NngPorts]:
        """Ports of every enabled driver: the listeners to restore at start-up."""
        with self._sessions() as s:
            rows = list(
                s.exec(
                    select(NngPortRow)
                    .join(DriverRow, col(DriverRow.id) == col(NngPortRow.driver_id))
                    .where(DriverRow.enabled == True)  # noqa: E712 - SQL comparison
                    .order_by(col(NngPortRow.driver_id), col(NngPortRow.role))
                )
            )
        by_driver: dict[str, list[NngPortRow]] = {}
        for row in rows:
            by_driver.setdefault(row.driver_id, []).append(row)
        return [p for group in by_driver.values() if (p := _ports(group)) is not None]


def _ports(rows: Iterable[NngPortRow]) -> NngPorts | None:
    roles = {r.role: r for r in rows}
    if "in" not in roles or "out" not in roles:
        return None
    return NngPorts(roles["in"].driver_id, roles["in"].port, roles["out"].port, roles["in"].wire)


def _pick_two(
    start: int, end: int, skip: set[int], usable: Callable[[int], bool]
) -> tuple[int, int] | None:
    picked: list[int] = []
    for port in range(start, end):
        if port in skip or not usable(port):
            continue
        picked.append(port)
        if len(picked) == 2:
            return picked[0], picked[1]
    return None
