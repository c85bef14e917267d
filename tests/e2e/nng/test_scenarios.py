"""original-behaviour §12 acceptance cases 1, 2, 8, 10, 14 (with a TLS-terminating proxy)
and 16, run with the published daemon over NNG. Case 9 is in test_recovery.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.nng.conftest import BELL, NngServer, assert_bell_counts
from tests.support.processes import wait_until

pytestmark = [pytest.mark.timeout(900)]


def test_seeded_jobs_complete_are_charged_and_stopping_the_driver_takes_the_qpu_offline(
    nng_server: NngServer, published_042: Path
) -> None:
    """§12.1, §12.2 and §12.16."""
    server = nng_server
    reg = server.register("qpu_sim_01")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    token = server.user_token("user@example.com", qpu_seconds=1000)
    ids = [server.submit_rest(token, BELL, reg.qpu_id, shots=1024) for _ in range(5)]
    for job_id in ids:
        job = server.wait_job_rest(token, job_id, timeout=120)
        assert job["status"] == "completed", job
        assert_bell_counts(job["results"]["circuit_results"][0]["counts"], 1024)
    me = server.http.get(
        f"{server.url}/api/collections/users/records",
        headers={"X-API-Token": token},
    )
    assert me.status_code == 200, me.text
    assert me.json()["items"][0]["qpu_seconds"] < 1000

    assert driver.interrupt() == 0
    # §12.16 allows 2 s; on a loaded shared machine we wait longer but expect it at once.
    wait_until(
        lambda: all(q["status"] != "online" for q in server.get("/api/qpus", headers={}).json()),
        10,
        "no QPU online after the driver stopped",
    )


def test_qiskit_built_circuit_completes(shared_server: NngServer, published_042: Path) -> None:
    """§12.8: a Qiskit-built Hadamard circuit (qasm2.dumps), 100 shots, via an API token."""
    from qiskit import QuantumCircuit, qasm2

    server = shared_server
    reg = server.register("hadamard")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    circuit = QuantumCircuit(1, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    token = server.user_token("qiskit@example.com")
    job_id = server.submit_rest(token, qasm2.dumps(circuit), reg.qpu_id, shots=100)
    job = server.wait_job_rest(token, job_id, timeout=60)
    assert job["status"] == "completed", job
    assert job["duration"] > 0
    counts = job["results"]["circuit_results"][0]["counts"]
    assert sum(counts.values()) == 100
    assert set(counts) <= {"0", "1"}


def test_driver_toggle_disconnects_and_the_running_daemon_reattaches(
    shared_server: NngServer, published_042: Path
) -> None:
    """§12.10: disable → offline and 403 at connect; enable + connect → back online alone."""
    server = shared_server
    reg = server.register("toggled")
    driver = server.driver(published_042, "0.4.2", reg).start()
    server.wait_online(reg, driver)
    record = server.driver_record(reg.driver_id)
    assert (record["status"], record["enabled"]) == ("online", True)

    anonymous = server.post(
        "/api/op/drivers/toggle", {"id": reg.driver_id, "enabled": False}, False
    )
    assert anonymous.status_code == 403
    off = server.post("/api/op/drivers/toggle", {"id": reg.driver_id, "enabled": False})
    assert off.status_code == 200, off.text

    def offline() -> bool:
        rec = server.driver_record(reg.driver_id)
        return rec["status"] == "offline" and server.qpu(reg.qpu_id)["status"] == "offline"

    wait_until(offline, 10, "driver and QPU offline after disabling")
    assert server.driver_record(reg.driver_id)["enabled"] is False
    connect = {"token": reg.token, "name": "qpu_sim_01"}
    assert server.post("/api/op/drivers/connect", connect, admin=False).status_code == 403

    on = server.post("/api/op/drivers/toggle", {"id": reg.driver_id, "enabled": True})
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True
    assert server.post("/api/op/drivers/connect", connect, admin=False).status_code == 200
    server.wait_online(reg, driver, timeout=30)  # the daemon redialled by itself
    assert driver.alive()
    token = server.user_token("toggle@example.com")
    job = server.process.submit(token, BELL, qpu=reg.qpu_id, shots=200)
    assert server.process.wait(token, job.id, timeout=120).state == "completed"


# -- §12.14 through a TLS-terminating proxy -------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """An unrelated certificate for localhost, as a lab's reverse proxy would present."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "proxy.pem", directory / "proxy.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsProxy:
    """Terminates TLS on a local port and relays the bytes to the plain HTTP gateway."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self._upstream = upstream_port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._context.wrap_socket(raw, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
        except OSError:
            raw.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._stopped = True
        self._listener.close()


@pytest.fixture
def tls_proxy(shared_server: NngServer, tmp_path: Path) -> Iterator[tuple[TlsProxy, Path]]:
    cert, key = _self_signed(tmp_path)
    proxy = TlsProxy(shared_server.process.http_port, cert, key)
    try:
        yield proxy, cert
    finally:
        proxy.close()


def test_snippet_driver_connects_through_a_tls_terminating_proxy(
    shared_server: NngServer, published_042: Path, tls_proxy: tuple[TlsProxy, Path]
) -> None:
    """§12.14 (proxy half): HTTP goes through a proxy with an unrelated certificate; the CA
    pin still guards the NNG channel."""
    server = shared_server
    proxy, cert = tls_proxy
    reg = server.register("ProxiedQPU")
    driver = server.driver(published_042, "0.4.2", reg)
    driver.qpi_addr = f"https://localhost:{proxy.port}"
    driver.start(extra_env={"REQUESTS_CA_BUNDLE": str(cert)})
    driver.wait_for_log("Worker process started", timeout=90)
    server.wait_online(reg, driver)
    assert "401 Client Error" not in driver.full_log()
    token = server.user_token("proxied@example.com")
    job = server.process.submit(token, BELL, qpu=reg.qpu_id, shots=128)
    assert server.process.wait(token, job.id, timeout=120).state == "completed"
