"""A systemd unit for the driver that works on a fresh machine.

The token stays in a 0600 EnvironmentFile. The data directory (raw data, the stored CA,
the worker's files) is systemd's `StateDirectory=` under /var/lib when it can be, so
systemd creates it with the right owner before every start; any other data directory is
created by the installer. Quantify/qblox configuration files are seeded from the shipped
examples when missing, so the unit starts and the operator has a file to edit.

Exit codes of `qpi-driver start` the unit relies on: 2 means the server refused the token
or the CA failed its pin — restarting cannot help, so `RestartPreventExitStatus=2` keeps
systemd from retrying every few seconds until the operator fixes the EnvironmentFile.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path("/var/lib")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
CONFIGURED_EXECUTORS = ("quantify", "qblox")
"""Executors that read a device and a hardware configuration file."""
FATAL_EXIT = 2
"""`qpi-driver start` exit code for a refused token or a failed CA pin."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class UnitSpec:
    """Inputs of the unit file.

    Attributes:
        name: QPU name (used in the unit and syslog identifiers).
        exec_args: Arguments after the binary, e.g. ["start", "--executor", "mock"].
        binary: Absolute path of the `qpi-driver` executable.
        env_file: Path of the EnvironmentFile holding the token.
        user: Service user, or None to run as root.
        working_dir: Working (and data) directory of the service; absolute.
        stop_timeout: Seconds systemd waits after SIGTERM (must cover the grace period).
        state_directory: `StateDirectory=` value (relative to /var/lib), if the working
            directory is one systemd should create.
    """

    name: str
    exec_args: list[str]
    binary: str
    env_file: Path
    user: str | None
    working_dir: Path
    stop_timeout: float = 30.0
    state_directory: str | None = None


def check_name(name: str) -> str:
    """Returns a QPU name usable in unit, directory and syslog names.

    Raises:
        ValueError: If it contains anything but letters, digits, `_`, `.` and `-`.
    """
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid name {name!r}: use 1-64 letters, digits, '_', '.' or '-' "
            "(it names the unit and its directories)"
        )
    return name


def state_directory_for(data_dir: Path) -> str | None:
    """The `StateDirectory=` value for a data directory under /var/lib, else None."""
    try:
        relative = data_dir.relative_to(STATE_ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts else None


def example_config(executor: str, kind: str) -> Path:
    """The shipped example configuration (`kind`: "device" or "hardware")."""
    suffix = "yml" if kind == "device" else "json"
    return CONFIG_DIR / f"{executor}.{kind}.example.{suffix}"


def seed_config(path: Path, example: Path) -> bool:
    """Copies `example` to `path` unless a file is there; returns True if it copied."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(example, path)
    path.chmod(0o640)
    return True


def _escape(argument: str) -> str:
    """Quotes one ExecStart argument for systemd (its own `%` and `$` expansions too)."""
    if "\n" in argument or "\r" in argument:
        raise ValueError(f"a unit argument cannot span lines: {argument!r}")
    return shlex.quote(argument).replace("%", "%%").replace("$", "$$")


def render_unit(spec: UnitSpec) -> str:
    """Returns the text of the `.service` unit; it never contains the token."""
    command = " ".join(_escape(part) for part in [spec.binary, *spec.exec_args])
    lines = [
        "[Unit]",
        f"Description=QPI driver for QPU {spec.name}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"EnvironmentFile={spec.env_file}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if spec.state_directory:
        # systemd creates it (owned by User=) before every start.
        lines += [f"StateDirectory={spec.state_directory}", "StateDirectoryMode=0750"]
    lines += [
        f"WorkingDirectory={spec.working_dir}",
        f"ExecStart={command}",
        "Restart=on-failure",
        "RestartSec=5",
        f"RestartPreventExitStatus={FATAL_EXIT}",
        # SIGTERM starts the graceful handback; the grace period must fit in this timeout.
        "KillMode=mixed",
        f"TimeoutStopSec={max(int(spec.stop_timeout + 0.999), 1)}",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={spec.name}.qpi-driver",
    ]
    if spec.user:
        lines.append(f"User={spec.user}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def render_env_file(token: str) -> str:
    """Returns the EnvironmentFile text holding the secret token."""
    if "\n" in token:
        raise ValueError("the token must be a single line")
    return f"QPI_ACCESS_TOKEN={token}\n"


def write_secret(path: Path, text: str) -> None:
    """Writes a file that only its owner can read, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    # O_CREAT only applies the mode to new files; an existing file is tightened too.
    path.chmod(0o600)


def prepare_directories(paths: list[Path], user: str | None) -> None:
    """Creates the service's directories (and hands them to `user`) when systemd won't."""
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(path, user=user)
