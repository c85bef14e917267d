"""The published `qpi-driver` (PyPI, unmodified) runs jobs on our server over NNG."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest

from tests.e2e.nng.conftest import BELL, NngServer, assert_bell_counts
from tests.e2e.nng.peers import PublishedDriver, listening

pytestmark = [pytest.mark.timeout(900)]


@pytest.mark.parametrize("device", ["mock", "qiskit_aer"])
def test_jobs_from_sdk_and_rest_complete_with_correct_counts(
    shared_server: NngServer, published_042: Path, device: str
) -> None:
    server = shared_server
    reg = server.register(f"nng-{device.replace('_', '-')}", kind=device)
    driver = server.driver(published_042, "0.4.2", reg, device=device).start()
    server.wait_online(reg, driver)
    record = server.driver_record(reg.driver_id)
    assert (record["status"], record["transport"]) == ("online", "nng")

    token = server.user_token(f"{device}@example.com")
    sdk_job = server.process.submit(token, BELL, qpu=reg.qpu_id, shots=400)
    rest_id = server.submit_rest(token, BELL, reg.qpu_id, shots=300)

    done = server.process.wait(token, sdk_job.id, timeout=120)
    assert done.state == "completed", (done.error, driver.log())
    assert done.attempt == 1
    assert done.result is not None
    assert_bell_counts(done.result["circuit_results"][0]["counts"], 400)
    rest = server.wait_job_rest(token, rest_id)
    assert rest["status"] == "completed", rest
    assert_bell_counts(rest["results"]["circuit_results"][0]["counts"], 300)
    assert rest["duration"] > 0  # charged from dispatch to result, once


def test_older_published_driver_runs_jobs(shared_server: NngServer, published_012: Path) -> None:
    """0.1.2: `qpi-driver process … --name`, and `name` in its connect body."""
    server = shared_server
    reg = server.register("nng-012")
    driver = server.driver(published_012, "0.1.2", reg).start()
    server.wait_online(reg, driver)
    token = server.user_token("old@example.com")
    job = server.process.submit(token, BELL, qpu=reg.qpu_id, shots=256)
    done = server.process.wait(token, job.id, timeout=120)
    assert done.state == "completed", (done.error, driver.log())
    assert_bell_counts(done.result["circuit_results"][0]["counts"], 256)  # type: ignore[index]
    # The name a 0.1 driver sends does not rename the registration.
    assert server.driver_record(reg.driver_id)["name"] == "nng-012-nng"


def test_wrong_ca_fingerprint_makes_the_driver_refuse(
    shared_server: NngServer, published_042: Path
) -> None:
    server = shared_server
    reg = server.register("nng-pinning")
    wrong = hashlib.sha256(b"some other CA").hexdigest()
    driver = server.driver(published_042, "0.4.2", reg, fingerprint=wrong).start()
    assert driver.wait_exit(120) != 0
    assert "CRITICAL SECURITY ERROR" in driver.log()
    assert server.qpu(reg.qpu_id)["status"] == "offline"
    assert server.driver_record(reg.driver_id)["status"] == "offline"


def test_disabled_driver_or_qpu_is_refused_with_403(
    shared_server: NngServer, published_042: Path
) -> None:
    server = shared_server
    reg = server.register("nng-refused")
    assert server.post("/api/op/drivers/connect", {"token": "qpi_" + "0" * 64}).status_code == 401

    off = server.post("/api/op/drivers/toggle", {"id": reg.driver_id, "enabled": False})
    assert off.status_code == 200, off.text
    refused = server.post("/api/op/drivers/connect", {"token": reg.token}, admin=False)
    assert refused.status_code == 403, refused.text
    assert refused.json()["status"] == 403
    driver = server.driver(published_042, "0.4.2", reg).start()
    assert driver.wait_exit(120) != 0
    assert "403" in driver.log()

    on = server.post("/api/op/drivers/toggle", {"id": reg.driver_id, "enabled": True})
    assert on.status_code == 200, on.text
    qpu_off = server.post("/api/op/qpu/toggle", {"id": reg.qpu_id, "enabled": False})
    assert qpu_off.status_code == 200, qpu_off.text
    assert server.post("/api/op/drivers/connect", {"token": reg.token}).status_code == 403
    legacy = server.post("/api/op/qpus/connect", {"name": "x", "access_token": reg.token})
    assert legacy.status_code == 403, legacy.text


def test_handshake_answers_every_generation(shared_server: NngServer) -> None:
    """Current and legacy handshakes: the same persisted ports, listening before the answer."""
    server = shared_server
    reg = server.register("nng-handshake")
    current = server.post("/api/op/drivers/connect", {"token": reg.token, "name": "n"}, admin=False)
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["status"] == "success"
    assert body["nng_host"] == "127.0.0.1"
    assert body["name"] == "nng-handshake-nng"
    assert body["tls_hash"] == body["ca_fingerprint"] == server.fingerprint
    ports = (body["nng_in_port"], body["nng_out_port"])
    assert all(server.port_start <= p < server.port_start + 12 for p in ports)
    assert ports[0] != ports[1]
    assert all(listening(p) for p in ports)

    legacy = server.post(
        "/api/op/qpus/connect",
        {"name": "old", "access_token": reg.token, "executor_type": "mock"},
        admin=False,
    )
    assert legacy.status_code == 200, legacy.text
    old = legacy.json()
    assert old["status"] == "success"
    assert (old["nng_command_port"], old["nng_result_port"]) == ports
    assert old["tls_hash"] == server.fingerprint


def test_registration_snippet_starts_the_published_driver(
    shared_server: NngServer, published_042: Path
) -> None:
    """§12.14: the command shown at registration, run as printed, connects the driver."""
    server = shared_server
    reg = server.register("SnippetTestQPU")
    install, start = reg.snippets["nng_cli"].splitlines()
    assert install.startswith("uv tool install --python 3.12 'qpi-driver[cli]'")
    assert reg.snippets["manual_cli"]  # our own driver's command sits next to it
    argv = shlex.split(start)
    assert argv[:6] == ["qpi-driver", "start", "--operation", "process", "--device", "mock"]
    older = shlex.split(reg.snippets["nng_cli_0_1"].splitlines()[1])
    assert older[:4] == ["qpi-driver", "process", "--device", "mock"]
    assert older[-2:] == ["--name", "SnippetTestQPU-nng"]
    driver = server.driver(published_042, "0.4.2", reg)
    driver.command = lambda: [str(published_042 / "qpi-driver"), *argv[1:]]  # type: ignore[method-assign]
    driver.start()
    driver.wait_for_log("Worker process started", timeout=90)
    server.wait_online(reg, driver)
    assert "401 Client Error" not in driver.log()
    assert isinstance(driver, PublishedDriver)
