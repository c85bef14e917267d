"""The real `qpi-driver` process: bootstrap, CA pinning, SIGTERM handback, systemd unit."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
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
CONFIGS = Path(__file__).resolve().parents[3] / "driver" / "qpi" / "driver" / "configs"


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


def _verify_unit(unit: Path) -> None:
    """`systemd-analyze verify` when the machine has it, plus the structure either way."""
    text = unit.read_text()
    sections = [line for line in text.splitlines() if line.startswith("[")]
    assert sections == ["[Unit]", "[Service]", "[Install]"]
    for line in text.splitlines():
        assert not line or line.startswith(("[", "#")) or "=" in line, line
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert Path(shlex.split(exec_start.removeprefix("ExecStart="))[0]).is_absolute()
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert str(unit) not in done.stderr, done.stderr  # no warnings about this unit


def test_install_systemd_writes_a_unit_that_starts_on_a_fresh_machine(tmp_path: Path):
    unit, env = tmp_path / "etc" / "qpu2.qpi-driver.service", tmp_path / "etc" / "qpu2.env"
    data = tmp_path / "fresh" / "qpu2"  # does not exist yet
    result = CliRunner().invoke(
        app,
        ["install-systemd", "-t", "tok", "--ca-fingerprint", ":".join(["AB"] * 32)]
        + ["-n", "qpu2", "-e", "quantify", "--is-dummy", "--output", str(unit)]
        + ["--env-file", str(env), "--data-dir", str(data), "--job-timeout", "20s"]
        + ["--log-level", "debug", "--grpc-addr", "qpi.example.org:50051"]
        + ["--shutdown-grace", "30s", "-o", "acquisition_timeout=5", "-o", "label=50% $HOME"],
    )
    assert result.exit_code == 0, result.output
    text = unit.read_text()
    assert data.is_dir()
    assert f"WorkingDirectory={data}" in text
    device, hardware = data / "quantify.device.yml", data / "quantify.hardware.json"
    assert device.read_text() == (CONFIGS / "quantify.device.example.yml").read_text()
    assert hardware.read_text() == (CONFIGS / "quantify.hardware.example.json").read_text()
    assert "seeded" in result.output
    for expected in [
        f"--ca-fingerprint {'ab' * 32}",
        "--job-timeout 20s",
        "--log-level DEBUG",
        "--grpc-addr qpi.example.org:50051",
        "--shutdown-grace 30s",
        f"--quantify-device-config {device}",
        f"--quantify-hardware-config {hardware}",
        "--is-dummy",
        "--executor-option acquisition_timeout=5",
        "--executor-option 'label=50%% $$HOME'",  # systemd's own % and $ escaped
        "RestartPreventExitStatus=2",
        "TimeoutStopSec=50",
    ]:
        assert expected in text, (expected, text)
    _verify_unit(unit)
    # An existing config is the operator's: a second install keeps it.
    device.write_text("# edited\n")
    again = CliRunner().invoke(
        app,
        ["install-systemd", "-t", "tok", "--ca-fingerprint", "ab" * 32, "-n", "qpu2"]
        + ["-e", "quantify", "--output", str(unit), "--env-file", str(env)]
        + ["--data-dir", str(data)],
    )
    assert again.exit_code == 0, again.output
    assert device.read_text() == "# edited\n"


def test_default_unit_lets_systemd_create_its_state_directory(tmp_path: Path):
    from qpi.driver import systemd

    data = systemd.STATE_ROOT / "qpi-driver" / "qpu3"
    spec = systemd.UnitSpec(
        "qpu3",
        ["start", "--data-dir", str(data)],
        BINARY,
        tmp_path / "qpu3.env",
        "daemon",
        data,
        state_directory=systemd.state_directory_for(data),
    )
    unit = tmp_path / "qpu3.qpi-driver.service"
    unit.write_text(systemd.render_unit(spec))
    text = unit.read_text()
    assert "StateDirectory=qpi-driver/qpu3" in text
    assert f"WorkingDirectory={data}" in text
    assert "User=daemon" in text
    assert systemd.state_directory_for(tmp_path) is None
    _verify_unit(unit)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ca-fingerprint", "abcd"], "64 hex"),
        ([], "fingerprint"),
        (["--ca-fingerprint", "ab" * 32, "--job-timeout", "soon"], "invalid duration"),
        (["--ca-fingerprint", "ab" * 32, "-n", "bad/name"], "invalid name"),
    ],
)
def test_install_systemd_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
):
    unit = tmp_path / "u.service"
    result = CliRunner().invoke(
        app,
        ["install-systemd", "-t", "tok", "--output", str(unit)]
        + ["--env-file", str(tmp_path / "e.env"), "--data-dir", str(tmp_path / "d"), *args],
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split())
    assert not unit.exists()
    assert not (tmp_path / "e.env").exists()


async def test_plugin_executor_gets_the_cli_options(tmp_path: Path):
    server = FakeDriverServer()
    port = await server.start()
    http = BootstrapHttp(grpc_port=port)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), QPI_ACCESS_TOKEN=TOKEN)
    data = tmp_path / "data"
    process = await asyncio.create_subprocess_exec(
        BINARY, "start", "-a", http.url, "-e", "driver_test_executors:OptionsExecutor",
        "-d", str(data), "--ca-file", str(tmp_path / "ca.pem"),
        "--executor-option", "count=3", "-o", "mode=fast", "-o", "ratio=0.25",
        env=env,
    )  # fmt: skip
    try:
        await server.wait_for(lambda: server.connected, timeout=60)
        options = json.loads((data / "options.json").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 30)
        if process.returncode is None:
            process.kill()
        http.close()
        await server.stop(0)
    assert options["count"] == 3
    assert options["mode"] == "fast"
    assert options["ratio"] == 0.25
    assert options["is_dummy"] is False


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
