"""Runs a real QpiServer (gRPC + REST on port 0) in a background event loop for tests."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import psycopg
from sqlalchemy.engine import Engine

from qpi.server.app import QpiServer
from qpi.server.settings import ServerSettings
from qpi.server.store.database import create_db_engine, migrate
from qpi.server.superuser import upsert_superuser
from qpi.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    qpu_pb2,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "supersecretpassword1234"


def selected_database_kind() -> str:
    """ "sqlite" (default) or "postgres", from QPI_TEST_DATABASE."""
    return os.environ.get("QPI_TEST_DATABASE", "sqlite")


def fresh_postgres_url() -> str:
    """Creates an empty PostgreSQL database for one server and returns its URL."""
    name = f"qpi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_postgres(url: str) -> None:
    """Drops a database made by fresh_postgres_url."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_engine(kind: str, sqlite_dir: Path) -> Iterator[Engine]:
    """An engine on a new migrated database of `kind`: "sqlite" (a file in `sqlite_dir`)
    or "postgres" (a database of its own, dropped afterwards); disposed of afterwards."""
    url = fresh_postgres_url() if kind == "postgres" else f"sqlite:///{sqlite_dir / 'store.db'}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        if kind == "postgres":
            drop_postgres(url)


def make_settings(data_dir: Path, **overrides: Any) -> ServerSettings:
    """Test settings: port 0, plaintext gRPC, fast timers, the selected database."""
    base = ServerSettings(
        data_dir=str(data_dir),
        server_port=0,
        grpc_port=0,
        bind_host="127.0.0.1",
        insecure=True,
        heartbeat_interval=0.5,
        heartbeat_timeout=2.0,
        job_timeout=3.0,
        recovery_interval=1.0,
        dispatch_poll_interval=1.0,
        idle_threshold=1.0,
        config_file="",
        # One parser worker (each imports Qiskit): the suite starts hundreds of servers on
        # a shared 2-core box. Tests of the parser lanes ask for more.
        parser_processes=1,
    )
    if "database_url" not in overrides and selected_database_kind() == "postgres":
        overrides["database_url"] = fresh_postgres_url()
    return dataclasses.replace(base, **overrides)


class ServerHarness:
    """A QpiServer on its own loop thread, plus convenience admin calls."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.server = QpiServer(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._channels: list[grpc.Channel] = []
        self.drivers: list[Any] = []

    def start(self) -> ServerHarness:
        upsert_superuser(self.settings, ADMIN_EMAIL, ADMIN_PASSWORD)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(60)
        self.admin_token = self.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        return self

    def stop(self) -> None:
        for driver in self.drivers:
            driver.stop()
        for channel in self._channels:
            channel.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- addresses ---------------------------------------------------------------------

    @property
    def grpc_port(self) -> int:
        return self.server.grpc_port

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def ca_fingerprint(self) -> str:
        assert self.server.pki is not None
        return self.server.pki.fingerprint

    @property
    def ca_pem(self) -> bytes:
        assert self.server.pki is not None
        return self.server.pki.ca_cert_pem

    admin_email = ADMIN_EMAIL
    admin_password = ADMIN_PASSWORD

    def channel(self) -> grpc.Channel:
        if self.settings.insecure:
            channel = grpc.insecure_channel(self.grpc_target)
        else:
            channel = grpc.secure_channel(
                self.grpc_target, grpc.ssl_channel_credentials(self.ca_pem)
            )
        self._channels.append(channel)
        return channel

    @staticmethod
    def auth(token: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]

    # -- convenience -------------------------------------------------------------------

    def login(self, email: str, password: str) -> str:
        stub = account_service_pb2_grpc.AccountServiceStub(self.channel())
        return str(
            stub.Login(account_service_pb2.LoginRequest(email=email, password=password)).token
        )

    def create_user(
        self,
        email: str,
        password: str = "userpassword1234",  # noqa: S107 - test fixture
        qpu_seconds: float = 1000.0,
    ) -> tuple[str, str]:
        """Creates a user and an API token for them; returns (user_id, api_token)."""
        stub = account_service_pb2_grpc.AccountServiceStub(self.channel())
        user = stub.CreateUser(
            account_service_pb2.CreateUserRequest(
                email=email, password=password, qpu_seconds=qpu_seconds
            ),
            metadata=self.auth(self.admin_token),
        ).user
        session = self.login(email, password)
        token = stub.CreateApiToken(
            account_service_pb2.CreateApiTokenRequest(name="tests"), metadata=self.auth(session)
        ).token
        return str(user.id), str(token)

    def register_qpu(self, name: str, num_qubits: int = 8) -> tuple[str, str]:
        """Registers a QPU with a driver; returns (qpu_id, driver_token)."""
        stub = qpu_service_pb2_grpc.QpuServiceStub(self.channel())
        resp = stub.CreateQpu(
            qpu_service_pb2.CreateQpuRequest(
                qpu=qpu_pb2.Qpu(name=name, num_qubits=num_qubits, enabled=True)
            ),
            metadata=self.auth(self.admin_token),
        )
        return str(resp.qpu.id), str(resp.access_token)

    def create_qpu(self, name: str, num_qubits: int = 8, *, delay: float = 0.0) -> str:
        """Registers a QPU and attaches a connected in-process mini driver to it."""
        qpu_id, token = self.register_qpu(name, num_qubits)
        self.attach_mini_driver(token, delay=delay, name=f"{name}-mini")
        return qpu_id

    def attach_mini_driver(self, token: str, *, delay: float = 0.0, name: str = "mini") -> Any:
        """Connects an in-process mini driver with a QPU's driver token; waits for welcome."""
        from tests.support.mini_driver import MiniDriver

        driver = MiniDriver(self.grpc_target, token, delay=delay, name=name).start()
        assert driver.welcomed.wait(15), "mini driver did not connect"
        self.drivers.append(driver)
        return driver

    def submit(self, token: str, qasm: str, *, qpu: str = "", shots: int = 100) -> job_pb2.Job:
        stub = job_service_pb2_grpc.JobServiceStub(self.channel())
        payload = job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=qasm)], shots=shots)
        return stub.CreateJob(
            job_service_pb2.CreateJobRequest(payload=payload, qpu=qpu), metadata=self.auth(token)
        ).job

    def wait(self, token: str, job_id: str, timeout: float = 30.0) -> job_pb2.Job:
        stub = job_service_pb2_grpc.JobServiceStub(self.channel())
        last = None
        for update in stub.WatchJob(
            job_service_pb2.WatchJobRequest(id=job_id), metadata=self.auth(token), timeout=timeout
        ):
            last = update.job
        assert last is not None
        return last
