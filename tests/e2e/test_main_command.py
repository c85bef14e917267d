"""The README's main path: `make demo` (scripts/demo.py), then a Bell job over REST.

The demo starts `qpi serve` and a mock `qpi-driver` in their own sessions; the test runs it
on free ports with a private data directory, uses the API token from its banner, and checks
that Ctrl-C (SIGINT) and SIGTERM leave no server or driver process behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ProcessExited, free_port, live_group_members, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.py"
BANNER = "QPI is running."
TOKEN_LINE = re.compile(r"Demo API token \(shown once\): (qpi_[0-9a-f]{64})")
BELL = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    log_path: Path
    http_url: str
    children: dict[int, str] = field(default_factory=dict)
    """pid (= process group, the demo starts each in its own session) -> command line."""

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_everything(self) -> None:
        # A test that failed early never recorded the children: find them while the demo
        # still runs (once it dies they are orphans with their own process groups).
        if self.proc.poll() is None:
            self.children = {**_children_of(self.proc.pid), **self.children}
        for pgid in [self.proc.pid, *self.children]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def _children_of(pid: int) -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _start_demo(tmp_path: Path) -> Demo:
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QPI_")}
    env.update(
        QPI_DEMO_DATA_DIR=str(tmp_path / "qpi_data"),
        QPI_DEMO_HTTP_PORT=str(http_port),
        QPI_DEMO_GRPC_PORT=str(grpc_port),
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Demo(proc, log_path, f"http://127.0.0.1:{http_port}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = _start_demo(tmp_path)
    try:
        yield running
    finally:
        running.kill_everything()


def _wait_banner(demo: Demo) -> str:
    def token() -> str | None:
        if demo.proc.poll() is not None:
            raise ProcessExited(
                f"demo exited with {demo.proc.returncode}:\n{demo.output()[-4000:]}"
            )
        text = demo.output()
        match = TOKEN_LINE.search(text)
        return match.group(1) if BANNER in text and match else None

    try:
        return str(wait_until(token, 90, "demo banner", step=0.3))
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{demo.output()[-4000:]}") from None


def _run_bell_over_rest(demo: Demo, api_token: str) -> None:
    headers = {"X-API-Token": api_token}
    with httpx.Client(base_url=demo.http_url, headers=headers, timeout=10) as http:
        body = {"circuits": [{"circuit": BELL}], "shots": 1000, "qpu_target": "mock_qpu"}
        created = http.post("/api/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        def finished() -> dict[str, object] | None:
            job = http.get(f"/api/jobs/{job_id}")
            assert job.status_code == 200, job.text
            data = dict(job.json())
            return data if data["status"] in ("completed", "failed", "cancelled") else None

        job = wait_until(finished, 60, f"job {job_id} finished", step=0.3)
    assert job["status"] == "completed", job
    results = job["results"]
    counts = results["counts"]
    assert set(counts) == {"00", "01", "10", "11"}
    assert sum(counts.values()) == 1000
    assert counts["01"] == counts["10"] == 0
    assert 400 < counts["00"] < 600, counts
    assert results["shots"] == 1000
    assert results["backend"] == "mock"


def _assert_dashboard_served(demo: Demo) -> None:
    """The banner names the dashboard, which the server serves (or explains how to build)."""
    url = f"{demo.http_url}/dashboard/"
    assert f"Dashboard     {url}" in demo.output()
    page = httpx.get(url, timeout=10)
    assert page.headers["content-type"].startswith("text/html")
    built = (ROOT / "dashboard" / "dist" / "index.html").exists()
    assert page.status_code == (200 if built else 404), page.text[:500]
    assert ('<div id="root">' in page.text) if built else ("make build" in page.text)


def _assert_stops_cleanly(demo: Demo, sig: int) -> None:
    demo.children = _children_of(demo.proc.pid)
    commands = " | ".join(demo.children.values())
    assert any(" serve " in c and "qpi" in c for c in demo.children.values()), commands
    assert any("qpi-driver" in c for c in demo.children.values()), commands

    demo.proc.send_signal(sig)
    # Generous: the demo itself gives each process 15 s; a loaded CI box is slow to exit.
    assert demo.proc.wait(90) == 0, demo.output()[-4000:]
    for pgid, command in demo.children.items():
        # Each child leads its own group; neither it nor anything it spawned may survive.
        wait_until(lambda pgid=pgid: not live_group_members(pgid), 5, f"{command} gone")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_demo_runs_a_bell_job_over_rest_and_stops_cleanly(demo: Demo, sig: int) -> None:
    started = time.monotonic()
    api_token = _wait_banner(demo)
    assert "Admin         admin@example.com" in demo.output()
    _assert_dashboard_served(demo)
    _run_bell_over_rest(demo, api_token)
    assert time.monotonic() - started < 120
    _assert_stops_cleanly(demo, sig)


def test_demo_started_again_reuses_its_data_and_logs_no_errors(tmp_path: Path) -> None:
    """A second `make demo` finds the QPU and the demo user of the first: it registers a
    new driver for the same QPU, and neither run makes a request that fails (a first-hour
    user reads such a line as something broken)."""
    outputs = []
    for _ in range(2):
        demo = _start_demo(tmp_path)
        try:
            api_token = _wait_banner(demo)
            _run_bell_over_rest(demo, api_token)
            _assert_stops_cleanly(demo, signal.SIGINT)
            outputs.append(demo.output())
        finally:
            demo.kill_everything()
    first = outputs[0]
    for output in outputs:
        failed = [line for line in output.splitlines() if "qpi.server.rpc.errors" in line]
        assert not failed, failed
    connected = re.compile(r"driver \S+ \(mock_qpu\) connected for qpu (\S+)")
    qpus = [set(connected.findall(output)) for output in outputs]
    assert len(qpus[0]) == 1, first[-4000:]
    assert qpus[1] == qpus[0], "the second run registered another QPU"
