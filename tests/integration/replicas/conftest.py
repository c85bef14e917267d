"""Two `qpi serve` replicas (in-process) on one fresh throwaway PostgreSQL database.

Replicas exist only on PostgreSQL, so these tests use it whatever QPI_TEST_DATABASE says.
The dispatchers' safety poll is set to an hour: any job that runs here was woken by an
event relayed through the database, never by the poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qpi.v1 import qpu_pb2, qpu_service_pb2, qpu_service_pb2_grpc
from tests.support.harness import ServerHarness, drop_postgres, fresh_postgres_url, make_settings

NO_POLL = 3600.0
"""Dispatch safety poll (s): never fires during a test."""


@dataclass
class Cluster:
    """Two replicas on one database, a user and a QPU registered through A."""

    a: ServerHarness
    b: ServerHarness
    url: str
    token: str
    qpu_id: str
    qpu_name: str
    driver_token: str

    def add_driver(self, name: str) -> str:
        """Registers another driver of the QPU (through A); returns its token."""
        stub = qpu_service_pb2_grpc.QpuServiceStub(self.a.channel())
        resp = stub.CreateDriver(
            qpu_service_pb2.CreateDriverRequest(
                driver=qpu_pb2.Driver(name=name, qpu_id=self.qpu_id, kind="mock")
            ),
            metadata=self.a.auth(self.a.admin_token),
        )
        return str(resp.access_token)


@pytest.fixture
def replica_db() -> Iterator[str]:
    """The replicas' fresh database (dropped after the test)."""
    url = fresh_postgres_url()
    yield url
    drop_postgres(url)


@pytest.fixture
def replica_factory(tmp_path: Path, replica_db: str) -> Iterator[Callable[..., ServerHarness]]:
    """Starts replicas on one fresh database (another route to it may be given)."""
    started: list[ServerHarness] = []

    def start(**overrides: Any) -> ServerHarness:
        overrides.setdefault("database_url", replica_db)
        overrides.setdefault("dispatch_poll_interval", NO_POLL)
        settings = make_settings(tmp_path / f"replica{len(started)}", **overrides)
        harness = ServerHarness(settings).start()
        started.append(harness)
        for other in started:  # each start re-saves the admin, which ends its sessions
            other.admin_token = other.login(other.admin_email, other.admin_password)
        return harness

    yield start
    for harness in started:
        harness.stop()


@pytest.fixture
def cluster(replica_factory: Callable[..., ServerHarness]) -> Cluster:
    return make_cluster(replica_factory(), replica_factory())


def make_cluster(a: ServerHarness, b: ServerHarness) -> Cluster:
    """A user and a QPU registered through A."""
    name = f"qpu-{uuid.uuid4().hex[:6]}"
    qpu_id, driver_token = a.register_qpu(name, 4)
    _, token = a.create_user(f"user-{uuid.uuid4().hex[:6]}@example.org")
    return Cluster(a, b, a.settings.database_url, token, qpu_id, name, driver_token)
