"""`make demo`: a QPI server with its embedded SQLite database, a mock driver and the dashboard.

`make demo` builds the dashboard first (dashboard/dist); the server serves it at /dashboard/.
First run creates an administrator, a demo user with an API token, and a QPU named
`mock_qpu`; credentials are kept in qpi_data/demo-credentials.json (mode 0600) and printed.
Ctrl-C stops both processes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from qpi.sdk import QPIClient

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("QPI_DEMO_DATA_DIR", ROOT / "qpi_data"))
HTTP_PORT = int(os.environ.get("QPI_DEMO_HTTP_PORT", "8090"))
GRPC_PORT = int(os.environ.get("QPI_DEMO_GRPC_PORT", "50051"))
CREDENTIALS = DATA / "demo-credentials.json"
DASHBOARD = ROOT / "dashboard" / "dist"
QPU = "mock_qpu"
BELL = (
    'OPENQASM 2.0; include \\"qelib1.inc\\"; qreg q[2]; creg c[2]; '
    "h q[0]; cx q[0],q[1]; measure q -> c;"
)


def _credentials() -> dict[str, str]:
    if CREDENTIALS.exists():
        return dict(json.loads(CREDENTIALS.read_text()))
    creds = {
        "admin_email": "admin@example.com",
        "admin_password": secrets.token_urlsafe(12),
        "user_email": "demo@example.com",
        "user_password": secrets.token_urlsafe(12),
    }
    _save(creds)
    return creds


def _save(creds: dict[str, str]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    CREDENTIALS.write_text(json.dumps(creds, indent=2))
    CREDENTIALS.chmod(0o600)


def _wait_http(url: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f}s")


def _provision(creds: dict[str, str], info: dict[str, object]) -> tuple[str, str]:
    """Ensures the demo QPU and user exist; returns (driver token, user API token)."""
    ca_pem = str(info.get("ca_certificate_pem", "")) or None
    target = f"127.0.0.1:{GRPC_PORT}"
    with QPIClient(target, tls=True, ca_pem=ca_pem.encode() if ca_pem else None) as admin:
        admin.login(creds["admin_email"], creds["admin_password"], superuser=True)
        # Listed rather than fetched by name: a first run would log a not-found error.
        existing = [qpu for qpu in admin.list_qpus() if qpu.name == QPU]
        if existing:  # an earlier run's QPU: a driver registration of its own for this run
            driver_token = admin.create_driver(
                existing[0].id, f"{QPU}-driver-{secrets.token_hex(2)}"
            ).access_token
        else:
            driver_token = admin.create_qpu(QPU, num_qubits=8).access_token
        if not any(user.email == creds["user_email"] for user in admin.list_users()):
            admin.create_user(creds["user_email"], creds["user_password"], qpu_seconds=3600)
    with QPIClient(target, tls=True, ca_pem=ca_pem.encode() if ca_pem else None) as user:
        user.login(creds["user_email"], creds["user_password"])
        api_token = user.create_api_token("demo").token
    return driver_token, api_token


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    creds = _credentials()
    subprocess.run(
        [
            BIN / "qpi",
            "superuser",
            "upsert",
            creds["admin_email"],
            creds["admin_password"],
            "--data-dir",
            str(DATA),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            BIN / "qpi",
            "serve",
            "--data-dir",
            str(DATA),
            "--server-port",
            str(HTTP_PORT),
            "--grpc-port",
            str(GRPC_PORT),
            "--config-file",
            "",
            "--dashboard-dir",
            str(DASHBOARD),
        ],
        start_new_session=True,
    )
    processes = [server]
    try:
        info = _wait_http(f"http://127.0.0.1:{HTTP_PORT}/api/pub/server-info")
        ca = httpx.get(f"http://127.0.0.1:{HTTP_PORT}/api/pub/root-ca.pem", timeout=5).text
        driver_token, api_token = _provision(creds, {**info, "ca_certificate_pem": ca})
        driver = subprocess.Popen(
            [
                BIN / "qpi-driver",
                "start",
                "--qpi-addr",
                f"http://127.0.0.1:{HTTP_PORT}",
                "--ca-fingerprint",
                str(info["ca_fingerprint"]),
                "--name",
                QPU,
                "--executor",
                "mock",
                "--data-dir",
                str(DATA / "driver"),
                "--ca-file",
                str(DATA / "driver" / "qpi.ca.pem"),
            ],
            env={**os.environ, "QPI_ACCESS_TOKEN": driver_token},
            start_new_session=True,
        )
        processes.append(driver)
        _banner(creds, api_token)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        raise SystemExit("a QPI process exited; see the log above")
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _dashboard_line() -> str:
    url = f"http://127.0.0.1:{HTTP_PORT}/dashboard/"
    if (DASHBOARD / "index.html").exists():
        return url
    return f"{url}   (not built: install Node.js >= 20.19 and run `make build`)"


def _banner(creds: dict[str, str], api_token: str) -> None:
    print(
        f"""
QPI is running.
  Dashboard     {_dashboard_line()}
  REST API      http://127.0.0.1:{HTTP_PORT}/api/   (OpenAPI: http://127.0.0.1:{HTTP_PORT}/docs)
  gRPC          127.0.0.1:{GRPC_PORT} (TLS; CA at http://127.0.0.1:{HTTP_PORT}/api/pub/root-ca.pem)
  Admin         {creds["admin_email"]} / {creds["admin_password"]}
  Demo user     {creds["user_email"]} / {creds["user_password"]}
  Demo API token (shown once): {api_token}
  QPU           {QPU} (mock executor)

Sign in to the dashboard as the demo user (Regular User) or the admin (Administrator).
Try:
  curl -s -X POST http://127.0.0.1:{HTTP_PORT}/api/jobs -H 'X-API-Token: {api_token}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"circuits":[{{"circuit":"{BELL}"}}],"shots":100}}'

Credentials are saved in {CREDENTIALS}. Press Ctrl-C to stop.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
