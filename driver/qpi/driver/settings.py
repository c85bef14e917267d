"""Driver configuration shared by the CLI, the daemon and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
        quantify_hardware_config: Hardware compilation config (JSON or YAML).
        quantify_device_config: Device config (YAML or JSON).
        job_timeout: Maximum executor seconds per job; 0 disables the limit.
        ca_file: Where the downloaded root CA is stored.
        ca_fingerprint: Expected SHA-256 (hex) of the root CA's DER encoding.
        grpc_addr: "host:port" overriding the discovered gRPC endpoint.
        save_raw_data: Store each job's dataset as NetCDF.
        shutdown_grace: Seconds a running job may continue after SIGTERM.
        log_level: Logging level name.
        backoff_initial: First reconnect delay in seconds.
        backoff_max: Reconnect delay cap in seconds.
        executor_options: Extra keyword options passed to the executor.
    """

    token: str
    qpi_addr: str = "http://127.0.0.1:8090"
    name: str = "qpu_sim_01"
    executor: str = "mock"
    data_dir: Path = Path("bin/data")
    is_dummy: bool = False
    quantify_hardware_config: Path = Path("quantify.hardware.json")
    quantify_device_config: Path = Path("quantify.device.yml")
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

    def __post_init__(self) -> None:
        addr = self.qpi_addr.strip().rstrip("/")
        if "://" not in addr:
            addr = f"http://{addr}"
        self.qpi_addr = addr
        self.ca_fingerprint = self.ca_fingerprint.strip().lower().replace(":", "")

    def executor_kwargs(self) -> dict[str, Any]:
        """Options handed to the executor constructor (unknown ones are ignored by it)."""
        return {
            "is_dummy": self.is_dummy,
            "hardware_config": self.quantify_hardware_config.resolve(),
            "device_config": self.quantify_device_config.resolve(),
            "job_timeout": self.job_timeout,
            **self.executor_options,
        }
