"""Real QPI processes for the dashboard's browser tests (Playwright's global setup runs this).

Starts a `qpi serve` (fresh SQLite data directory, free ports, serving the built dashboard)
and a `qpi-driver start --executor mock` attached to QPU `mock_qpu`, creates the test
accounts, writes what the tests need to a JSON state file and then serves a small control
API on 127.0.0.1 (free port) so tests can start and stop more real processes:

* ``POST /drivers`` ``{"token", "name", "executor"?}`` starts a driver daemon;
* ``POST /drivers/<name>/stop`` sends it SIGTERM and returns at once (the test then watches
  the dashboard); ``.../kill`` SIGKILLs it;
* ``POST /servers`` ``{"args": [...]}`` returns the URL of another, empty `qpi serve` started
  with those arguments (started on first request; empty-state and configuration scenarios);
  ``POST /servers/restart`` ``{"args": [...]}`` restarts that one on the same ports;
* ``POST /oauth2`` returns the URL of a server whose users sign in at a real OpenID Connect
  provider (tests/support/oidc, started on first request) and that provider's issuer.

SIGTERM (or SIGINT) stops everything. Run from the repository root:
``python -m tests.e2e.dashboard.stack --state FILE --root DIR --dashboard-dir DIST``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.oidc import OidcProvider
from tests.support.processes import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    DriverProcess,
    ServeProcess,
)

QPU = "mock_qpu"
USER_EMAIL = "user@example.com"
OTHER_EMAIL = "other@example.com"
USER_SECONDS = 1000.0
BELL = (
    'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; creg c[2]; '
    "h q[0]; cx q[0],q[1]; measure q -> c;"
)
# A loaded CI machine can take several seconds over a cold executor's first job.
DRIVER_ARGS = ("--job-timeout", "120")


class Stack:
    """The processes under test and the operations the control API offers."""

    def __init__(self, root: Path, dashboard_dir: Path) -> None:
        self.root = root
        self.dashboard_dir = dashboard_dir
        self.servers: list[ServeProcess] = []
        self.drivers: dict[str, DriverProcess] = {}
        self.lock = threading.Lock()
        self.main: ServeProcess | None = None
        self.extra: dict[tuple[str, ...], ServeProcess] = {}
        self.oidc: tuple[OidcProvider, ServeProcess] | None = None

    def start_server(self, extra: tuple[str, ...] = ()) -> ServeProcess:
        with self.lock:
            index = len(self.servers)
        args = ("--dashboard-dir", str(self.dashboard_dir), *extra)
        server = ServeProcess(self.root / f"serve-{index}", extra_args=args)
        (self.root / f"serve-{index}").mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.servers.append(server)
        return server.start()

    def extra_server(self, args: tuple[str, ...]) -> ServeProcess:
        """An empty server started with `args`, shared by every test that asks for the same."""
        with self.lock:
            found = self.extra.get(args)
        if found is None:
            found = self.start_server(args)
            with self.lock:
                self.extra[args] = found
        return found

    def oauth2_server(self) -> tuple[OidcProvider, ServeProcess]:
        """A server with one OAuth2 provider (name ``local``) and sign-up allowed."""
        with self.lock:
            found = self.oidc
        if found is None:
            provider = OidcProvider(self.root)
            providers = json.dumps([provider.provider_config("local")])
            server = self.start_server(("--oauth2-providers", providers, "--allow-signup", "true"))
            provider.start([f"{server.http_url}/api/oauth2/local/callback"])
            found = (provider, server)
            with self.lock:
                self.oidc = found
        return found

    def start_driver(self, token: str, name: str, executor: str = "mock") -> DriverProcess:
        assert self.main is not None
        driver = DriverProcess(
            self.main, token, self.root, name=name, executor=executor, extra_args=DRIVER_ARGS
        )
        with self.lock:
            previous = self.drivers.get(name)
            self.drivers[name] = driver
        if previous is not None and previous.alive():
            previous.terminate()
        return driver.start()

    def stop_driver(self, name: str, *, kill: bool) -> None:
        with self.lock:
            driver = self.drivers[name]
        if kill:
            driver.kill()
        else:
            # Stop in the background: the test measures how fast the dashboard notices.
            threading.Thread(target=driver.terminate, daemon=True).start()

    def boot(self) -> dict[str, Any]:
        """Starts the main server and driver and creates the accounts; returns the state."""
        self.main = server = self.start_server()
        admin = server.admin()
        token = admin.create_qpu(QPU, num_qubits=8).access_token
        for email in (USER_EMAIL, OTHER_EMAIL):
            admin.create_user(email, USER_PASSWORD, qpu_seconds=USER_SECONDS)
        self.start_driver(str(token), QPU).wait_connected()
        # Warm the executor (imports, first transpile) so timing scenarios measure a warm driver.
        job = admin.submit_job(circuits=[BELL], shots=10, qpu_target=QPU)
        admin.wait(job.id, timeout=180)
        return {
            "url": server.http_url,
            "caFingerprint": server.ca_fingerprint,
            "admin": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            "user": {"email": USER_EMAIL, "password": USER_PASSWORD},
            "other": {"email": OTHER_EMAIL, "password": USER_PASSWORD},
            "password": USER_PASSWORD,
            "userSeconds": USER_SECONDS,
            "qpu": QPU,
            "logs": str(self.root),
        }

    def stop_all(self) -> None:
        with self.lock:
            drivers = list(self.drivers.values())
            servers = list(self.servers)
        for driver in drivers:
            driver.terminate(grace=5)
        for server in servers:
            server.stop(grace=5)
        if self.oidc is not None:
            self.oidc[0].stop()


def handler_for(stack: Stack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # keep the test output clean

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = [p for p in self.path.split("/") if p]
            try:
                if parts == ["drivers"]:
                    stack.start_driver(body["token"], body["name"], body.get("executor", "mock"))
                    self._reply(200, {"name": body["name"]})
                elif len(parts) == 3 and parts[0] == "drivers" and parts[2] in ("stop", "kill"):
                    stack.stop_driver(parts[1], kill=parts[2] == "kill")
                    self._reply(200, {"name": parts[1]})
                elif parts == ["servers"]:
                    server = stack.extra_server(tuple(body.get("args", [])))
                    self._reply(200, {"url": server.http_url})
                elif parts == ["oauth2"]:
                    provider, server = stack.oauth2_server()
                    self._reply(200, {"url": server.http_url, "issuer": provider.issuer})
                elif parts == ["servers", "restart"]:
                    server = stack.extra_server(tuple(body.get("args", [])))
                    server.stop(grace=5)
                    server.restart()
                    self._reply(200, {"url": server.http_url})
                else:
                    self._reply(404, {"message": "unknown control route"})
            except Exception as exc:
                self._reply(500, {"message": repr(exc)})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--dashboard-dir", type=Path, required=True)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.root, args.dashboard_dir.resolve())
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        state = stack.boot()
        control = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(stack))
        threading.Thread(target=control.serve_forever, daemon=True).start()
        state["control"] = f"http://127.0.0.1:{control.server_address[1]}"
        tmp = args.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(args.state)  # the setup waits for this file to appear complete
        done.wait()
        control.shutdown()
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
