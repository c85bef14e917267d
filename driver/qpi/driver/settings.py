"""Driver configuration shared by the CLI, the daemon and tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_OPTION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_EXECUTOR_OPTIONS = frozenset({"data_dir"})
"""Constructor arguments the daemon itself sets; `--executor-option` may not override them."""


def normalize_fingerprint(text: str) -> str:
    """Returns a CA fingerprint as 64 lowercase hex digits.

    Accepts any case and the colon-separated form (``AB:CD:...``) the dashboard and
    `openssl x509 -fingerprint -sha256` print.

    Raises:
        ValueError: If it is not a SHA-256 digest (e.g. ``abcd``).
    """
    value = text.strip().lower().replace(":", "")
    if not _FINGERPRINT.fullmatch(value):
        raise ValueError(
            f"invalid CA fingerprint {text!r}: expected the SHA-256 shown in the dashboard "
            "(64 hex digits, colons allowed)"
        )
    return value


def parse_executor_options(items: Iterable[str]) -> dict[str, Any]:
    """Parses repeated ``key=value`` options for the executor constructor.

    A value that is valid JSON becomes that JSON value (``3`` -> 3, ``true`` -> True,
    ``[1,2]`` -> a list); anything else is kept as a string (``path=/opt/cfg.yml``).

    Raises:
        ValueError: On a missing ``=``, a key that is not a Python identifier, a reserved
            or repeated key.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _OPTION_KEY.fullmatch(key):
            raise ValueError(f"invalid executor option {item!r}: expected key=value")
        if key in RESERVED_EXECUTOR_OPTIONS:
            raise ValueError(f"executor option {key!r} is set by the daemon itself")
        if key in options:
            raise ValueError(f"executor option {key!r} given twice")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


@dataclass
class DriverSettings:
    """All options of `qpi-driver start`.

    Attributes:
        token: Access token of the QPU (Bearer token on the stream).
        qpi_addr: HTTP base URL of the server, used for bootstrap (server-info, root CA).
        name: QPU / driver display name.
        executor: Executor name or "pkg.module:ClassName".
        data_dir: Directory for raw data and the worker's working directory.
        is_dummy: Use vendor dummy instruments instead of hardware.
        quantify_hardware_config: Hardware compilation config (JSON or YAML); None uses
            the executor's shipped example.
        quantify_device_config: Device config (YAML or JSON); None uses the shipped example.
        job_timeout: Maximum executor seconds per job; 0 disables the limit.
        ca_file: Where the downloaded root CA is stored.
        ca_fingerprint: Expected SHA-256 (hex) of the root CA's DER encoding.
        grpc_addr: "host:port" overriding the discovered gRPC endpoint.
        save_raw_data: Store each job's dataset as NetCDF.
        shutdown_grace: Seconds a running job may continue after SIGTERM.
        log_level: Logging level name.
        backoff_initial: First reconnect delay in seconds.
        backoff_max: Reconnect delay cap in seconds.
        executor_options: Extra keyword options passed to the executor constructor
            (`--executor-option key=value`); they win over the built-in ones.
        prefetch: Jobs the server may lease ahead of the running one (DriverHello.prefetch).
    """

    token: str
    qpi_addr: str = "http://127.0.0.1:8090"
    name: str = "qpu_sim_01"
    executor: str = "mock"
    data_dir: Path = Path("bin/data")
    is_dummy: bool = False
    quantify_hardware_config: Path | None = None
    quantify_device_config: Path | None = None
    job_timeout: float = 10.0
    ca_file: Path = Path("bin/qpi.ca.pem")
    ca_fingerprint: str = ""
    grpc_addr: str | None = None
    save_raw_data: bool = True
    shutdown_grace: float = 10.0
    log_level: str = "INFO"
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    executor_options: dict[str, Any] = field(default_factory=dict)
    prefetch: int = 1

    def __post_init__(self) -> None:
        addr = self.qpi_addr.strip().rstrip("/")
        if "://" not in addr:
            addr = f"http://{addr}"
        self.qpi_addr = addr
        self.ca_fingerprint = self.ca_fingerprint.strip().lower().replace(":", "")

    def executor_kwargs(self) -> dict[str, Any]:
        """Options handed to the executor constructor (unknown ones are ignored by it)."""
        options: dict[str, Any] = {"is_dummy": self.is_dummy, "job_timeout": self.job_timeout}
        if self.quantify_hardware_config is not None:
            options["hardware_config"] = self.quantify_hardware_config.resolve()
        if self.quantify_device_config is not None:
            options["device_config"] = self.quantify_device_config.resolve()
        return options | self.executor_options
