"""Copy-paste commands shown once when an administrator registers a driver."""

from __future__ import annotations

import shlex

# Executor kinds the qpi-driver daemon runs, with the extra each needs.
_EXTRAS = {"mock": "", "qiskit_aer": "aer", "quantify": "quantify", "qblox": "qblox", "presto": ""}
EXECUTOR_KINDS: frozenset[str] = frozenset(_EXTRAS)
"""Driver kinds the qpi-driver daemon runs with a built-in executor."""

# The published NNG daemon (PyPI `qpi-driver`): kind -> (operation, extras, -o options).
_PUBLISHED = {
    "mock": ("process", "cli", ()),
    "presto": ("process", "cli", ()),
    "qiskit_aer": ("process", "cli,aer", ()),
    "quantify": ("process", "cli,quantify", ()),
    "qblox": ("process", "cli,qblox", ()),
    "bluefors_gen1": (
        "monitor",
        "cli",
        ("base_url=http://localhost:49099", "channels=mapper.bf.tmc:K,mapper.bf.pmc:mbar"),
    ),
}

_STUB = '''from typing import Any

import xarray as xr

from qpi.driver.executors.base import Executor


class MyExecutor(Executor):
    """Runs QPI jobs on my instrument."""

    name = "my_executor"

    def execute(self, payload: Any) -> xr.Dataset:
        raise NotImplementedError("drive the instrument and return its raw data")

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        raise NotImplementedError("turn the raw data into counts per circuit")
'''


def driver_snippets(
    *, kind: str, name: str, token: str, qpi_addr: str, ca_fingerprint: str
) -> dict[str, str]:
    """Install and start commands for a new driver of `kind`.

    Known executor kinds get ``manual_cli`` (install + start) and ``systemd`` (a unit that
    keeps the token in a 0600 file); ``custom`` gets ``install`` and a ``stub`` executor to
    fill in. Kinds the published NNG daemon runs (including the ``bluefors_gen1`` monitor)
    also get ``nng_cli`` and ``nng_cli_0_1``: the published ``qpi-driver`` in its current
    (0.2 and later) and 0.1 command grammars, for labs that keep their existing daemons.
    """
    snippets = _native(kind, name, token, qpi_addr, ca_fingerprint)
    if kind in _PUBLISHED:
        snippets.update(_published(kind, name, token, qpi_addr, ca_fingerprint))
    return snippets


def _native(kind: str, name: str, token: str, qpi_addr: str, ca_fingerprint: str) -> dict[str, str]:
    common = [
        "--qpi-addr",
        qpi_addr,
        "--token",
        token,
        "--ca-fingerprint",
        ca_fingerprint,
        "--name",
        name,
    ]
    if kind in _EXTRAS:
        extra = _EXTRAS[kind]
        package = f"qpi-driverd[{extra}]" if extra else "qpi-driverd"
        install = f"pip install {shlex.quote(package)}"
        start = shlex.join(["qpi-driver", "start", *common, "--executor", kind])
        unit = shlex.join(["sudo", "qpi-driver", "install-systemd", *common, "--executor", kind])
        return {"manual_cli": f"{install}\n{start}", "systemd": f"{install}\n{unit}"}
    if kind == "custom":
        start = shlex.join(["qpi-driver", "start", *common, "--executor", "my_module:MyExecutor"])
        return {"install": f"pip install qpi-driverd\n{start}", "stub": _STUB}
    return {}


def _published(
    kind: str, name: str, token: str, qpi_addr: str, ca_fingerprint: str
) -> dict[str, str]:
    operation, extras, options = _PUBLISHED[kind]
    # The published wheel declares Python 3.12; uv fetches nothing when 3.12 is installed.
    install = shlex.join(["uv", "tool", "install", "--python", "3.12", f"qpi-driver[{extras}]"])
    connection = ["--qpi-addr", qpi_addr, "--token", token, "--ca-fingerprint", ca_fingerprint]
    flags = [arg for option in options for arg in ("-o", option)]
    current = ["qpi-driver", "start", "--operation", operation, "--device", kind, *connection]
    older = ["qpi-driver", operation, "--device", kind, *connection, "--name", name]
    return {
        "nng_cli": f"{install}\n{shlex.join([*current, *flags])}",
        "nng_cli_0_1": f"{install}\n{shlex.join([*older, *flags])}",
    }
