"""The published `qpi-driver` daemons from PyPI, installed as a lab would, and run unmodified.

Each version lives in its own virtual environment under the system temp directory, built
once and shared by every test (and xdist worker) through a file lock. The driver declares
Python 3.12: the pyenv 3.12 interpreter is used when present, else the two-step install on
this interpreter (dependencies first, then the driver without its Python pin), as
shared/reference/published-peers.md §2 describes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tests.support.processes import ProcessExited, wait_until

PEERS_ROOT = Path(tempfile.gettempdir()) / "qpi-e2e-published-drivers"
# The driver's dependencies, for the two-step install on an interpreter it does not declare.
_DRIVER_DEPENDENCIES = [
    "numpy>=2.0.0",
    "xarray>=2024.1.0",
    "pynng>=0.8.0",
    "requests>=2.31.0",
    "qiskit>=1.0.0",
    "scipy>=1.10.0",
    "pyyaml>=6.0",
    "qiskit_qasm3_import",
    "typer>=0.9.0",
    "qiskit-aer>=0.14.0",
]


def python312() -> Path | None:
    """A CPython 3.12 from pyenv, if this machine has one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(root.glob("3.12*"), reverse=True):
        python = candidate / "bin" / "python"
        if python.exists():
            return python
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _works(bin_dir: Path, version: str) -> bool:
    probe = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('qpi-driver'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.returncode == 0 and probe.stdout.strip() == version


def install_published_driver(version: str) -> Path:
    """The bin directory of a venv holding `qpi-driver[cli,aer]==version` from PyPI."""
    venv = PEERS_ROOT / f"qpi-driver-{version}"
    bin_dir = venv / "bin"
    with _locked(PEERS_ROOT / f"qpi-driver-{version}.lock"):
        if (venv / ".complete").exists() and _works(bin_dir, version):
            return bin_dir
        shutil.rmtree(venv, ignore_errors=True)
        interpreter = python312()
        run = _pip_runner(bin_dir)
        subprocess.run(
            [str(interpreter or sys.executable), "-m", "venv", str(venv)], check=True, timeout=300
        )
        if interpreter is not None:
            run("install", f"qpi-driver[cli,aer]=={version}")
        else:
            run("install", *_DRIVER_DEPENDENCIES)
            run("install", "--no-deps", "--ignore-requires-python", f"qpi-driver[cli]=={version}")
        if not _works(bin_dir, version):
            raise RuntimeError(f"qpi-driver {version} did not install into {venv}")
        (venv / ".complete").write_text(version)
    return bin_dir


def _pip_runner(bin_dir: Path):  # type: ignore[no-untyped-def]
    def run(*args: str) -> None:
        done = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", "-q", *args],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    return run


def free_port_block(size: int) -> int:
    """The first port of `size` consecutive ports that were all free a moment ago.

    Chosen below the kernel's ephemeral range: outgoing connections (clients, database
    pools, other tests' servers) take their local ports from that range, so a block inside
    it can be taken between this check and the server's bind (seen in CI as "No NNG
    listener port is free")."""
    start = _ephemeral_start()
    for _ in range(200):
        if start - size > _LOWEST:
            base = random.randrange(_LOWEST, start - size)  # noqa: S311 - not a secret
        else:  # no room below the ephemeral range: take the kernel's pick
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                base = int(probe.getsockname()[1])
            if base + size >= 65535:
                continue
        if all(_bindable(p) for p in range(base, base + size)):
            return base
    raise RuntimeError("no free block of ports")


_LOWEST = 10_000
"""Blocks start above the well-known and most registered service ports."""


def _ephemeral_start() -> int:
    """Where the kernel's range of automatically assigned local ports starts."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing only
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PublishedDriver:
    """One unmodified published daemon, in its own process group, SIGINT to stop."""

    def __init__(
        self,
        bin_dir: Path,
        version: str,
        *,
        qpi_addr: str,
        token: str,
        fingerprint: str,
        root: Path,
        device: str = "mock",
        name: str = "qpu_sim_01",
    ) -> None:
        self.bin_dir = bin_dir
        self.version = version
        self.qpi_addr = qpi_addr
        self.token = token
        self.fingerprint = fingerprint
        self.device = device
        self.name = name
        # The daemon refuses paths outside $HOME, /tmp, /var/tmp, ...: pytest's tmp_path is fine.
        self.work = root / f"published-{name}"
        self.log_path = root / f"published-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """The CLI grammar of this version (0.2 and later: `start`; 0.1: `process`)."""
        ca_file = str(self.work / "qpi.ca.pem")
        exe = str(self.bin_dir / "qpi-driver")
        if self.version.startswith("0.1."):
            return [
                exe, "process", "--device", self.device, "--name", self.name,
                "--qpi-addr", self.qpi_addr, "--ca-fingerprint", self.fingerprint,
                "--ca-file", ca_file, "-o", f"data_dir={self.work / 'data'}",
            ]  # fmt: skip
        return [
            exe, "start", "--operation", "process", "--device", self.device,
            "--qpi-addr", self.qpi_addr, "--ca-fingerprint", self.fingerprint,
            "--ca-file", ca_file, "--data-dir", str(self.work / "data"),
        ]  # fmt: skip

    def start(self, extra_env: dict[str, str] | None = None) -> PublishedDriver:
        self.work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QPI_")}
        env.update(QPI_ACCESS_TOKEN=self.token, PYTHONUNBUFFERED="1", **(extra_env or {}))
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.work,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raises ProcessExited if the daemon died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessExited(f"qpi-driver exited with {self.proc.returncode}:\n{self.log()}")

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def wait_for_log(self, text: str, timeout: float) -> None:
        wait_until(lambda: text in self.full_log(), timeout, f"{text!r} in the driver log")

    def interrupt(self, timeout: float = 45.0) -> int | None:
        """SIGINT (graceful; SIGTERM would orphan the worker), then SIGKILL the group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL the whole group: daemon and its executor worker, no goodbye."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def full_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log(self) -> str:
        """The end of the log, for failure messages."""
        return self.full_log()[-6000:]
