"""`qpi-driver` command line: start the daemon, print the version, install a systemd unit."""

from __future__ import annotations

import asyncio
import json
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


def _duration(value: str | float) -> float:
    """Parses the server's duration syntax (`20s`, `1m30s`, `500ms`, or bare seconds)."""
    from qpi.common.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

HwConfig = Annotated[
    Path | None,
    typer.Option(
        "--quantify-hardware-config",
        envvar="QPI_QUANTIFY_HARDWARE_CONFIG",
        help="Hardware compilation config (JSON or YAML) for quantify/qblox "
        "(default: the shipped example).",
    ),
]
DevConfig = Annotated[
    Path | None,
    typer.Option(
        "--quantify-device-config",
        envvar="QPI_QUANTIFY_DEVICE_CONFIG",
        help="Device config (YAML or JSON) for quantify/qblox (default: the shipped example).",
    ),
]
JobTimeout = Annotated[
    float,
    typer.Option(
        "--job-timeout",
        envvar="QPI_JOB_TIMEOUT",
        parser=_duration,
        metavar="DURATION",
        help="Longest the executor may run one job, e.g. 20s, 2m, 1m30s or seconds (0: no limit).",
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
    typer.Option(
        "--grpc-addr",
        envvar="QPI_GRPC_ADDR",
        help="host:port of the gRPC endpoint (overrides discovery).",
    ),
]
LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        envvar="QPI_LOG_LEVEL",
        parser=_log_level,
        help="DEBUG, INFO, WARNING or ERROR. Other libraries log at WARNING unless DEBUG.",
    ),
]
SaveRaw = Annotated[
    bool,
    typer.Option("--save-raw-data/--no-save-raw-data", help="Store raw datasets as NetCDF."),
]
Prefetch = Annotated[
    int,
    typer.Option(
        "--prefetch",
        min=0,
        max=4,
        help="Jobs the server may send ahead while one runs, so the next starts without a "
        "round trip (0 turns pipelining off).",
    ),
]
Grace = Annotated[
    float,
    typer.Option(
        "--shutdown-grace",
        parser=_duration,
        metavar="DURATION",
        help="How long a running job may finish after SIGTERM (e.g. 10s).",
    ),
]
ExecutorOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--executor-option",
        "-o",
        metavar="KEY=VALUE",
        help="Option for the executor's constructor (repeatable); JSON values are decoded "
        "(count=3, flag=true), anything else stays a string.",
    ),
]


def _executor_options(items: list[str] | None) -> dict[str, object]:
    from qpi.driver.settings import parse_executor_options

    try:
        return parse_executor_options(items or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--executor-option") from exc


def _fingerprint(value: str, *, required: bool) -> str:
    from qpi.driver.settings import normalize_fingerprint

    if not value.strip():
        if required:
            raise typer.BadParameter(
                "the CA fingerprint shown in the dashboard is required",
                param_hint="--ca-fingerprint",
            )
        return ""
    try:
        return normalize_fingerprint(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ca-fingerprint") from exc


@app.command()
def start(
    token: Token = "",
    qpi_addr: QpiAddr = "http://127.0.0.1:8090",
    name: Name = "qpu_sim_01",
    executor: ExecutorName = "mock",
    data_dir: DataDir = Path("bin/data"),
    is_dummy: IsDummy = False,
    quantify_hardware_config: HwConfig = None,
    quantify_device_config: DevConfig = None,
    job_timeout: JobTimeout = 10.0,
    ca_file: CaFile = Path("bin/qpi.ca.pem"),
    ca_fingerprint: CaFingerprint = "",
    grpc_addr: GrpcAddr = None,
    log_level: LogLevel = "INFO",
    save_raw_data: SaveRaw = True,
    shutdown_grace: Grace = 10.0,
    executor_option: ExecutorOptions = None,
    prefetch: Prefetch = 1,
) -> None:
    """Run the driver daemon until SIGTERM/SIGINT.

    Exit codes: 0 stopped on request, 1 bad usage or the executor cannot start, 2 the
    server refused the token or the CA failed its pin (retrying cannot help), 3 the worker
    could not be restarted.
    """
    from qpi.common.logs import configure_logging
    from qpi.driver.daemon import DriverDaemon
    from qpi.driver.executors.registry import ExecutorNotAvailable, check_available
    from qpi.driver.settings import DriverSettings

    configure_logging(log_level)
    if not token:
        typer.echo("error: an access token is required (--token or QPI_ACCESS_TOKEN)", err=True)
        raise typer.Exit(1)
    fingerprint = _fingerprint(ca_fingerprint, required=False)
    options = _executor_options(executor_option)
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
        ca_fingerprint=fingerprint,
        grpc_addr=grpc_addr,
        save_raw_data=save_raw_data,
        shutdown_grace=shutdown_grace,
        log_level=log_level,
        executor_options=options,
        prefetch=prefetch,
    )
    typer.echo(f"qpi-driver {__version__}: {settings.name} ({executor}) -> {settings.qpi_addr}")
    code = asyncio.run(DriverDaemon(settings).run())
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the driver version."""
    typer.echo(__version__)


def _installed_binary() -> str:
    """The absolute path of `qpi-driver` for ExecStart: on PATH, else beside this Python
    (a virtualenv that is not activated), else whatever was run."""
    beside = Path(sys.executable).with_name("qpi-driver")
    for candidate in (shutil.which("qpi-driver"), beside if beside.exists() else None):
        if candidate:
            return str(Path(candidate).absolute())
    return str(Path(sys.argv[0]).resolve())


@app.command("install-systemd")
def install_systemd(
    token: Token = "",
    ca_fingerprint: CaFingerprint = "",
    qpi_addr: QpiAddr = "http://127.0.0.1:8090",
    name: Name = "qpu_sim_01",
    executor: ExecutorName = "mock",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data and working directory (default /var/lib/qpi-driver/<name>)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Unit file path.")] = None,
    env_file: Annotated[Path | None, typer.Option(help="EnvironmentFile for the token.")] = None,
    user: Annotated[str | None, typer.Option(help="Service user (default: none, root).")] = None,
    is_dummy: IsDummy = False,
    quantify_hardware_config: HwConfig = None,
    quantify_device_config: DevConfig = None,
    job_timeout: JobTimeout = 10.0,
    grpc_addr: GrpcAddr = None,
    log_level: LogLevel = "INFO",
    save_raw_data: SaveRaw = True,
    shutdown_grace: Grace = 10.0,
    executor_option: ExecutorOptions = None,
) -> None:
    """Write a systemd unit (token in a separate 0600 EnvironmentFile) that starts on a
    fresh machine: its directories and quantify/qblox configs are created."""
    from qpi.common.durations import format_duration
    from qpi.driver import systemd

    if not token:
        typer.echo("error: an access token is required (--token or QPI_ACCESS_TOKEN)", err=True)
        raise typer.Exit(1)
    try:
        systemd.check_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from exc
    fingerprint = _fingerprint(ca_fingerprint, required=True)
    options = _executor_options(executor_option)
    unit_path = output or Path(f"/etc/systemd/system/{name}.qpi-driver.service")
    secret_path = (env_file or Path(f"/etc/qpi-driver/{name}.env")).absolute()
    data = (data_dir or systemd.STATE_ROOT / "qpi-driver" / name).absolute()
    state_directory = systemd.state_directory_for(data)
    args = ["start", "--qpi-addr", qpi_addr, "--name", name, "--executor", executor]
    args += ["--data-dir", str(data), "--ca-file", str(data / "qpi.ca.pem")]
    args += ["--ca-fingerprint", fingerprint]
    args += ["--job-timeout", format_duration(job_timeout), "--log-level", log_level]
    args += ["--shutdown-grace", format_duration(shutdown_grace)]
    args.append("--save-raw-data" if save_raw_data else "--no-save-raw-data")
    if grpc_addr:
        args += ["--grpc-addr", grpc_addr]
    if is_dummy:
        args.append("--is-dummy")
    for key, value in options.items():
        args += [
            "--executor-option",
            f"{key}={json.dumps(value) if not isinstance(value, str) else value}",
        ]
    seeded: list[Path] = []
    configs: list[tuple[Path, Path]] = []
    if executor in systemd.CONFIGURED_EXECUTORS:
        device = (quantify_device_config or data / f"{executor}.device.yml").absolute()
        hardware = (quantify_hardware_config or data / f"{executor}.hardware.json").absolute()
        args += ["--quantify-device-config", str(device)]
        args += ["--quantify-hardware-config", str(hardware)]
        configs = [
            (device, systemd.example_config(executor, "device")),
            (hardware, systemd.example_config(executor, "hardware")),
        ]
    binary = _installed_binary()
    spec = systemd.UnitSpec(
        name,
        args,
        binary,
        secret_path,
        user,
        data,
        stop_timeout=shutdown_grace + 20,
        state_directory=state_directory,
    )
    try:
        text = systemd.render_unit(spec)
        systemd.write_secret(secret_path, systemd.render_env_file(token))
        # systemd creates a StateDirectory itself; the installer still creates it now so
        # the seeded configs have a home, and creates any other data directory for good.
        systemd.prepare_directories([data], user)
        for path, example in configs:
            if systemd.seed_config(path, example):
                seeded.append(path)
                if user:
                    shutil.chown(path, user=user)
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        unit_path.write_text(text)
        unit_path.chmod(0o644)
    except (OSError, ValueError, LookupError) as exc:
        typer.echo(f"error: cannot write the unit: {exc} (run as root?)", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {unit_path} and {secret_path} (mode 0600); data in {data}")
    for path in seeded:
        typer.echo(f"seeded {path} from the shipped example: edit it for your hardware")
    typer.echo(f"next: systemctl daemon-reload && systemctl enable --now {unit_path.name}")


def main() -> None:
    """Console-script entry point."""
    app()
