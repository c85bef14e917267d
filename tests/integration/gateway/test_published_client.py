"""Compatibility: the published ``qpi-client`` 0.4.2 (own venv) against our gateway."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.gateway.conftest import USER_PASSWORD

VENV = Path("/tmp/qpi-client-venv-0.4.2")
SCRIPT = Path(__file__).parent / "published" / "client_script.py"


def _usable(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import qpi_client, qiskit"], capture_output=True, timeout=120
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def client_python() -> Path:
    """Python of a venv holding qpi-client==0.4.2 (built once, cached under /tmp)."""
    python = VENV / "bin" / "python"
    if _usable(python):
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", str(VENV), "--python", "3.11", "-q"], check=True, timeout=300)
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "qpi-client==0.4.2"],
            check=True,
            timeout=1200,
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "qpi-client==0.4.2"],
            check=True,
            timeout=1200,
        )
    assert _usable(python), "qpi-client 0.4.2 venv is not usable"
    return python


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_published_client_end_to_end(qpi_server: object, client_python: Path) -> None:
    server = qpi_server
    server.create_qpu("sim", 4)
    user_id, token = server.create_user(
        "compat@example.com", password=USER_PASSWORD, qpu_seconds=1000.0
    )
    config = {
        "api_token": token,
        "user_id": user_id,
        "user_email": "compat@example.com",
        "user_password": USER_PASSWORD,
        "admin_email": server.admin_email,
        "admin_password": server.admin_password,
    }
    proc = subprocess.run(
        [str(client_python), str(SCRIPT), server.http_url, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
