"""NNG port allocations: unique across drivers and roles, race-free, persistent."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.nng_ports import NngPortStore, PortRangeExhausted
from qpi.server.store.tables import DriverRow, QpuRow
from tests.support.harness import drop_postgres, fresh_postgres_url, selected_database_kind


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    postgres = selected_database_kind() == "postgres"
    url = fresh_postgres_url() if postgres else f"sqlite:///{tmp_path / 'ports.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if postgres:
            drop_postgres(url)


def _store(engine: Engine) -> NngPortStore:
    return NngPortStore(lambda: Session(engine, expire_on_commit=False))


def _drivers(engine: Engine, count: int, enabled: bool = True) -> list[str]:
    with Session(engine) as s:
        qpu = QpuRow(name=f"q{count}-{enabled}")
        s.add(qpu)
        s.flush()
        rows = [
            DriverRow(name=f"d{i}", qpu_id=qpu.id, token_hash=f"{qpu.id}{i:049d}", enabled=enabled)
            for i in range(count)
        ]
        s.add_all(rows)
        s.commit()
        return [r.id for r in rows]


def _anything(_: int) -> bool:
    return True


def test_allocation_is_stable_and_survives_a_new_store(engine: Engine) -> None:
    (driver,) = _drivers(engine, 1)
    first = _store(engine).allocate(driver, "envelope", 7000, 7010, _anything)
    assert (first.in_port, first.out_port) == (7000, 7001)
    again = _store(engine).allocate(driver, "envelope", 7000, 7010, _anything)
    assert again == first
    assert _store(engine).ports_of(driver) == first
    legacy = _store(engine).allocate(driver, "legacy", 7000, 7010, _anything)
    assert (legacy.in_port, legacy.out_port, legacy.wire) == (7000, 7001, "legacy")


def test_ports_are_unique_across_drivers_and_skip_unusable_ones(engine: Engine) -> None:
    a, b = _drivers(engine, 2)
    store = _store(engine)
    pa = store.allocate(a, "envelope", 7000, 7010, lambda p: p != 7001)
    assert (pa.in_port, pa.out_port) == (7000, 7002)
    pb = store.allocate(b, "envelope", 7000, 7010, _anything, avoid=[7003])
    assert (pb.in_port, pb.out_port) == (7001, 7004)


def test_exhausted_range_is_reported(engine: Engine) -> None:
    a, b = _drivers(engine, 2)
    store = _store(engine)
    store.allocate(a, "envelope", 7000, 7003, _anything)
    with pytest.raises(PortRangeExhausted, match="7000..7002"):
        store.allocate(b, "envelope", 7000, 7003, _anything)


def test_concurrent_allocations_never_share_a_port(engine: Engine) -> None:
    drivers = _drivers(engine, 12)
    store = _store(engine)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda d: store.allocate(d, "envelope", 7000, 7100, _anything), drivers)
        )
    ports = [p for r in results for p in (r.in_port, r.out_port)]
    assert len(ports) == len(set(ports)) == 24
    assert {r.driver_id for r in results} == set(drivers)
    # Concurrent connects of one driver agree on one pair.
    (same,) = _drivers(engine, 1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pairs = set(
            pool.map(lambda _: store.allocate(same, "envelope", 7000, 7100, _anything), range(4))
        )
    assert len(pairs) == 1


def test_restore_lists_enabled_drivers_and_deletion_frees_ports(engine: Engine) -> None:
    (on,) = _drivers(engine, 1)
    (off,) = _drivers(engine, 1, enabled=False)
    store = _store(engine)
    mine = store.allocate(on, "envelope", 7000, 7010, _anything)
    store.allocate(off, "envelope", 7000, 7010, _anything)
    assert store.enabled_assignments() == [mine]
    info = store.driver(on)
    assert info is not None
    assert (info.enabled, info.qpu_enabled) == (True, True)
    with Session(engine) as s:
        row = s.get(DriverRow, on)
        s.delete(row)
        s.commit()
    assert store.ports_of(on) is None
    store.release(off)
    assert store.ports_of(off) is None
    assert store.driver(on) is None
