"""Fixtures for the NNG compatibility suite: real `qpi serve`, real published daemons."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.nng.peers import PublishedDriver, free_port_block, install_published_driver
from tests.support.harness import drop_postgres, fresh_postgres_url, selected_database_kind
from tests.support.processes import ADMIN_EMAIL, ADMIN_PASSWORD, ServeProcess, wait_until

BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)
PORT_BLOCK = 12


@pytest.fixture(scope="session")
def published_042() -> Path:
    """bin/ of a venv with the newest published qpi-driver (built once, shared)."""
    return install_published_driver("0.4.2")


@pytest.fixture(scope="session")
def published_012() -> Path:
    """bin/ of a venv with qpi-driver 0.1.2 (older CLI and connect body)."""
    return install_published_driver("0.1.2")


@dataclass
class Registered:
    """A QPU with one driver registration."""

    qpu_id: str
    qpu_name: str
    driver_id: str
    token: str
    snippets: dict[str, str]


class NngServer:
    """A `qpi serve` process with its own NNG port range, driven over REST and the SDK."""

    def __init__(
        self,
        root: Path,
        extra_args: tuple[str, ...] = (),
        timers: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.port_start = free_port_block(PORT_BLOCK)
        # QPI_TEST_DATABASE=postgres: the server runs on its own fresh PostgreSQL database.
        postgres = selected_database_kind() == "postgres"
        self.database_url = fresh_postgres_url() if postgres else ""
        self.process = ServeProcess(
            root,
            database_url=self.database_url,
            timers=timers,
            extra_args=(
                "--port-range-start", str(self.port_start),
                "--port-range-end", str(self.port_start + PORT_BLOCK),
                *extra_args,
            ),
        )  # fmt: skip
        self.http = httpx.Client(timeout=30)
        self._admin_token = ""
        self._drivers: list[PublishedDriver] = []

    @property
    def url(self) -> str:
        return self.process.http_url

    @property
    def fingerprint(self) -> str:
        return self.process.ca_fingerprint

    def start(self) -> NngServer:
        self.process.start(timeout=120)
        return self

    def stop(self) -> None:
        for driver in self._drivers:
            driver.interrupt(timeout=10)
        self.process.stop()
        self.http.close()
        if self.database_url:
            drop_postgres(self.database_url)

    def admin(self) -> dict[str, str]:
        if not self._admin_token:
            answer = self.http.post(
                f"{self.url}/api/collections/_superusers/auth-with-password",
                json={"identity": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            )
            assert answer.status_code == 200, answer.text
            self._admin_token = answer.json()["token"]
        return {"Authorization": f"Bearer {self._admin_token}"}

    def post(self, path: str, body: dict[str, Any], admin: bool = True) -> httpx.Response:
        return self.http.post(f"{self.url}{path}", json=body, headers=self.admin() if admin else {})

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(f"{self.url}{path}", headers=headers or self.admin())

    def register(self, qpu_name: str, kind: str = "mock", num_qubits: int = 4) -> Registered:
        qpu = self.post("/api/op/qpus/create", {"name": qpu_name, "num_qubits": num_qubits})
        assert qpu.status_code == 201, qpu.text
        driver = self.post(
            "/api/op/drivers/create",
            {"name": f"{qpu_name}-nng", "qpu": qpu.json()["id"], "kind": kind},
        )
        assert driver.status_code == 201, driver.text
        body = driver.json()
        return Registered(qpu.json()["id"], qpu_name, body["id"], body["token"], body["snippets"])

    def driver(
        self, bin_dir: Path, version: str, reg: Registered, device: str = "mock", **kw: Any
    ) -> PublishedDriver:
        driver = PublishedDriver(
            bin_dir,
            version,
            qpi_addr=self.url,
            token=kw.pop("token", reg.token),
            fingerprint=kw.pop("fingerprint", self.fingerprint),
            root=self.root,
            device=device,
            name=kw.pop("name", reg.qpu_name.replace("-", "_")),
        )
        self._drivers.append(driver)
        return driver

    def qpu(self, qpu_id: str) -> dict[str, Any]:
        answer = self.get(f"/api/qpus/{qpu_id}", headers={})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def driver_record(self, driver_id: str) -> dict[str, Any]:
        answer = self.get(f"/api/collections/drivers/records/{driver_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_online(self, reg: Registered, driver: PublishedDriver, timeout: float = 90) -> None:
        def online() -> bool:
            driver.check_alive()
            return self.qpu(reg.qpu_id)["status"] == "online"

        try:
            wait_until(online, timeout, f"QPU {reg.qpu_name} online", step=0.3)
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc}\n--- driver ---\n{driver.log()}\n--- server ---\n{self.process.log()}"
            ) from None

    def user_token(self, email: str, qpu_seconds: float = 3600.0) -> str:
        return self.process.create_user(email, qpu_seconds)

    def submit_rest(self, api_token: str, qasm: str, qpu: str, shots: int) -> str:
        answer = self.http.post(
            f"{self.url}/api/jobs",
            json={"circuits": [{"circuit": qasm}], "shots": shots, "qpu_target": qpu},
            headers={"X-API-Token": api_token},
        )
        assert answer.status_code in (200, 201), answer.text
        return str(answer.json()["id"])

    def job_rest(self, api_token: str, job_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.url}/api/jobs/{job_id}", headers={"X-API-Token": api_token})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_job_rest(self, api_token: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            job = self.job_rest(api_token, job_id)
            return job if job["status"] in ("completed", "failed", "cancelled") else None

        return dict(wait_until(finished, timeout, f"job {job_id} finished", step=0.3))


@pytest.fixture
def nng_server(tmp_path: Path) -> Iterator[NngServer]:
    """A fresh server for one test (tests that restart or kill it)."""
    server = NngServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NngServer]:
    """One server for a module's tests; each test registers its own QPU and driver."""
    server = NngServer(tmp_path_factory.mktemp("nng")).start()
    try:
        yield server
    finally:
        server.stop()


def assert_bell_counts(counts: dict[str, int], shots: int) -> None:
    """A Bell pair: all shots counted, only 00 and 11 observed."""
    assert sum(counts.values()) == shots, counts
    assert {k for k, v in counts.items() if v} <= {"00", "11"}, counts
    assert counts.get("00", 0) > 0, counts
    assert counts.get("11", 0) > 0, counts
