"""Rendering of a systemd unit for the driver (token kept in a 0600 EnvironmentFile)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UnitSpec:
    """Inputs of the unit file.

    Attributes:
        name: QPU name (used in the unit and syslog identifiers).
        exec_args: Arguments after the binary, e.g. ["start", "--executor", "mock"].
        binary: Absolute path of the `qpi-driver` executable.
        env_file: Path of the EnvironmentFile holding the token.
        user: Service user, or None to run as root.
        working_dir: Working directory of the service.
    """

    name: str
    exec_args: list[str]
    binary: str
    env_file: Path
    user: str | None
    working_dir: Path


def render_unit(spec: UnitSpec) -> str:
    """Returns the text of the `.service` unit; it never contains the token."""
    command = " ".join(shlex.quote(part) for part in [spec.binary, *spec.exec_args])
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
        f"WorkingDirectory={spec.working_dir}",
        f"ExecStart={command}",
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM starts the graceful handback; the grace period must fit in this timeout.
        "KillMode=mixed",
        "TimeoutStopSec=30",
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
