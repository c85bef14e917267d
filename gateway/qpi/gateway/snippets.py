"""Copy-paste commands shown once when an administrator registers a driver."""

from __future__ import annotations

import shlex

# Executor kinds the qpi-driver daemon runs, with the extra each needs.
_EXTRAS = {"mock": "", "qiskit_aer": "aer", "quantify": "quantify", "qblox": "qblox", "presto": ""}

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
    fill in. Monitor kinds (e.g. ``bluefors_gen1``) are not run by qpi-driver: none.
    """
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
