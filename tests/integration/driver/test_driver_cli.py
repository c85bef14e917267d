"""The real `qpi-driver` process: bootstrap, CA pinning, SIGTERM handback, systemd unit."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_driver_server import TOKEN, BootstrapHttp, FakeDriverServer, bell_payload
from typer.testing import CliRunner

from qpi.driver.bootstrap import SecurityError, ca_fingerprint, discover
from qpi.driver.cli import app

BINARY = str(Path(sys.executable).with_name("qpi-driver"))


def make_ca() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_pinned_ca_is_verified_and_stored(tmp_path: Path):
    pem = make_ca()
    http = BootstrapHttp(grpc_port=4242, ca_pem=pem, fingerprint=ca_fingerprint(pem))
    try:
        with pytest.raises(SecurityError, match="CRITICAL SECURITY ERROR"):
            discover(http.url, "ab" * 32, tmp_path / "ca.pem")
        assert not (tmp_path / "ca.pem").exists()
        with pytest.raises(SecurityError, match="no --ca-fingerprint"):
            discover(http.url, "", tmp_path / "ca.pem")
        endpoint = discover(http.url, ca_fingerprint(pem).upper(), tmp_path / "ca.pem")
        assert endpoint.target == "127.0.0.1:4242"
        assert endpoint.credentials is not None
        assert (tmp_path / "ca.pem").read_bytes() == pem
    finally:
        http.close()


def test_cli_reports_a_wrong_fingerprint(tmp_path: Path):
    pem = make_ca()
    http = BootstrapHttp(grpc_port=4242, ca_pem=pem)
    try:
        result = CliRunner().invoke(
            app,
            ["start", "-t", TOKEN, "-a", http.url, "--ca-fingerprint", "00" * 32]
            + ["--data-dir", str(tmp_path / "d"), "--ca-file", str(tmp_path / "ca.pem")],
        )
    finally:
        http.close()
    assert result.exit_code != 0
    assert not (tmp_path / "ca.pem").exists()


def test_cli_missing_extra_and_token(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "qiskit_aer" else real(n, *a)
    )
    result = CliRunner().invoke(app, ["start", "-t", "x", "-e", "qiskit_aer"])
    assert result.exit_code == 1
    assert "needs extra 'aer': pip install 'qpi-driverd[aer]'" in result.output
    result = CliRunner().invoke(app, ["start"], env={"QPI_ACCESS_TOKEN": ""})
    assert result.exit_code == 1


def test_install_systemd_keeps_the_token_out_of_the_unit(tmp_path: Path):
    unit, env = tmp_path / "q.service", tmp_path / "q.env"
    result = CliRunner().invoke(
        app,
        ["install-systemd", "-t", "s3cret", "--ca-fingerprint", "ab" * 32, "-n", "qpu1"]
        + ["--output", str(unit), "--env-file", str(env), "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in unit.read_text()
    assert f"EnvironmentFile={env}" in unit.read_text()
    assert env.read_text() == "QPI_ACCESS_TOKEN=s3cret\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


async def test_sigterm_finishes_running_job_and_hands_back_the_rest(tmp_path: Path):
    server = FakeDriverServer()
    port = await server.start()
    http = BootstrapHttp(grpc_port=port)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), QPI_ACCESS_TOKEN=TOKEN)
    data = tmp_path / "data"
    process = await asyncio.create_subprocess_exec(
        BINARY, "start", "-a", http.url, "-e", "driver_test_executors:ScriptedExecutor",
        "-d", str(data), "--ca-file", str(tmp_path / "ca.pem"), env=env,
    )  # fmt: skip
    try:
        await server.wait_for(lambda: server.connected, timeout=60)
        server.assign("running", bell_payload(qasm="sleep 1"))
        server.assign("queued", bell_payload(qasm="ok"))
        await server.wait_for(lambda: (data / "executions.log").exists())
        worker_pid = int((data / "worker.pid").read_text())
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
        http.close()
        await server.stop(0)
    assert "running" in server.results
    assert [r.job_id for r in server.kinds("job_release")] == ["queued"]
    assert server.kinds("goodbye")
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
