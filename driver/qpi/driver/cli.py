"""`qpi-driver` command line: start the daemon, print the version, install a systemd unit."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from qpi.driver import __version__

app = typer.Typer(
    help="QPI driver daemon: connects a QPU or simulator to a QPI server.",
    no_args_is_help=True,
    add_completion=False,
)

QpiAddr = Annotated[
    str, typer.Option("-a", "--qpi-addr", envvar="QPI_ADDR", help="HTTP URL of the QPI server.")
]
Token = Annotated[
    str,
    typer.Option("-t", "--token", envvar="QPI_ACCESS_TOKEN", help="Access token of the QPU."),
]
Name = Annotated[str, typer.Option("-n", "--name", envvar="QPU_NAME", help="Name of this QPU.")]
ExecutorName = Annotated[
    str,
    typer.Option(
        "-e",
        "--executor",
        envvar="DRIVER_BACKEND",
        help="mock, qiskit_aer, quantify, qblox, presto, or 'pkg.module:ClassName'.",
    ),
]
DataDir = Annotated[
    Path,
    typer.Option("-d", "--data-dir", envvar="QPI_DATA_DIR", help="Raw data and work files."),
]
IsDummy = Annotated[
    bool, typer.Option("--is-dummy", help="Use vendor dummy instruments instead of hardware.")
]
HwConfig = Annotated[
    Path,
    typer.Option(
        "--quantify-hardware-config",
        envvar="QPI_QUANTIFY_HARDWARE_CONFIG",
        help="Hardware compilation config (JSON or YAML) for quantify/qblox.",
    ),
]
DevConfig = Annotated[
    Path,
    typer.Option(
        "--quantify-device-config",
        envvar="QPI_QUANTIFY_DEVICE_CONFIG",
        help="Device config (YAML or JSON) for quantify/qblox.",
    ),
]
JobTimeout = Annotated[
    float,
    typer.Option(
        "--job-timeout",
        envvar="QPI_JOB_TIMEOUT",
        help="Max seconds the executor may run one job (0: no limit).",
    ),
]
CaFile = Annotated[
    Path, typer.Option("--ca-file", envvar="QPI_CA_FILE", help="Where the server's CA is stored.")
]
CaFingerprint = Annotated[
    str,
    typer.Option(
        "--ca-fingerprint",
        envvar="QPI_CA_FINGERPRINT",
        help="SHA-256 fingerprint of the server's root CA, as shown in the dashboard.",
    ),
]
GrpcAddr = Annotated[
    str | None,
    typer.Option("--grpc-addr", help="host:port of the gRPC endpoint (overrides discovery)."),
]
LogLevel = Annotated[str, typer.Option("--log-level", envvar="QPI_LOG_LEVEL", help="Log level.")]
SaveRaw = Annotated[
    bool,
    typer.Option("--save-raw-data/--no-save-raw-data", help="Store raw datasets as NetCDF."),
]
Grace = Annotated[
    float,
    typer.Option("--shutdown-grace", help="Seconds a running job may finish after SIGTERM."),
]


@app.command()
def start(
    token: Token = "",
    qpi_addr: QpiAddr = "http://127.0.0.1:8090",
    name: Name = "qpu_sim_01",
    executor: ExecutorName = "mock",
    data_dir: DataDir = Path("bin/data"),
    is_dummy: IsDummy = False,
    quantify_hardware_config: HwConfig = Path("quantify.hardware.json"),
    quantify_device_config: DevConfig = Path("quantify.device.yml"),
    job_timeout: JobTimeout = 10.0,
    ca_file: CaFile = Path("bin/qpi.ca.pem"),
    ca_fingerprint: CaFingerprint = "",
    grpc_addr: GrpcAddr = None,
    log_level: LogLevel = "INFO",
    save_raw_data: SaveRaw = True,
    shutdown_grace: Grace = 10.0,
) -> None:
    """Run the driver daemon until SIGTERM/SIGINT."""
    from qpi.driver.daemon import DriverDaemon
    from qpi.driver.executors.registry import ExecutorNotAvailable, check_available
    from qpi.driver.settings import DriverSettings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not token:
        typer.echo("error: an access token is required (--token or QPI_ACCESS_TOKEN)", err=True)
        raise typer.Exit(1)
    try:
        check_available(executor)
    except ExecutorNotAvailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    settings = DriverSettings(
        token=token,
        qpi_addr=qpi_addr,
        name=name.replace("-", "_"),
        executor=executor,
        data_dir=data_dir,
        is_dummy=is_dummy,
        quantify_hardware_config=quantify_hardware_config,
        quantify_device_config=quantify_device_config,
        job_timeout=job_timeout,
        ca_file=ca_file,
        ca_fingerprint=ca_fingerprint,
        grpc_addr=grpc_addr,
        save_raw_data=save_raw_data,
        shutdown_grace=shutdown_grace,
        log_level=log_level,
    )
    typer.echo(f"qpi-driver {__version__}: {settings.name} ({executor}) -> {settings.qpi_addr}")
    code = asyncio.run(DriverDaemon(settings).run())
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the driver version."""
    typer.echo(__version__)


@app.command("install-systemd")
def install_systemd(
    token: Token = "",
    ca_fingerprint: CaFingerprint = "",
    qpi_addr: QpiAddr = "http://127.0.0.1:8090",
    name: Name = "qpu_sim_01",
    executor: ExecutorName = "mock",
    data_dir: Annotated[Path | None, typer.Option(help="Default /var/qpi-driver/<name>.")] = None,
    output: Annotated[Path | None, typer.Option(help="Unit file path.")] = None,
    env_file: Annotated[Path | None, typer.Option(help="EnvironmentFile for the token.")] = None,
    user: Annotated[str | None, typer.Option(help="Service user (default: none, root).")] = None,
    is_dummy: IsDummy = False,
) -> None:
    """Write a systemd unit (token in a separate 0600 EnvironmentFile)."""
    from qpi.driver.systemd import UnitSpec, render_env_file, render_unit, write_secret

    if not token:
        typer.echo("error: an access token is required (--token or QPI_ACCESS_TOKEN)", err=True)
        raise typer.Exit(1)
    unit_path = output or Path(f"/etc/systemd/system/{name}.qpi-driver.service")
    secret_path = env_file or Path(f"/etc/qpi-driver/{name}.env")
    data = (data_dir or Path(f"/var/qpi-driver/{name}")).resolve()
    args = ["start", "--qpi-addr", qpi_addr, "--name", name, "--executor", executor]
    args += ["--data-dir", str(data), "--ca-file", str(data / "qpi.ca.pem")]
    args += ["--ca-fingerprint", ca_fingerprint]
    if executor in ("quantify", "qblox"):
        args += ["--quantify-device-config", str(data / "quantify.device.yml")]
        args += ["--quantify-hardware-config", str(data / "quantify.hardware.json")]
    if is_dummy:
        args.append("--is-dummy")
    binary = shutil.which("qpi-driver") or str(Path(sys.argv[0]).resolve())
    spec = UnitSpec(name, args, binary, secret_path.resolve(), user, data)
    try:
        write_secret(secret_path, render_env_file(token))
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        unit_path.write_text(render_unit(spec))
        unit_path.chmod(0o644)
    except OSError as exc:
        typer.echo(f"error: cannot write the unit: {exc} (run as root?)", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {unit_path} and {secret_path} (mode 0600)")
    typer.echo(f"next: systemctl daemon-reload && systemctl enable --now {unit_path.name}")


def main() -> None:
    """Console-script entry point."""
    app()
