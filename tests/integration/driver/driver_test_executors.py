"""Executors used by the daemon tests; loaded in the worker via "module:Class" paths."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import xarray as xr

from qpi.driver.executors.base import Executor
from qpi.driver.payload import JobPayload
from qpi.driver.results import build_result


class ScriptedExecutor(Executor):
    """Behaviour chosen by the circuit text: `sleep <s>`, `crash`, `fail`, else instant.

    Every execution appends the job id to <data_dir>/executions.log and the worker pid is
    written to <data_dir>/worker.pid, so tests can count runs and check for orphans.
    """

    name = "scripted"
    num_qubits = 3

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        assert self.data_dir is not None
        (self.data_dir / "worker.pid").write_text(str(os.getpid()))

    def execute(self, payload: JobPayload) -> xr.Dataset:
        assert self.data_dir is not None
        with Path(self.data_dir / "executions.log").open("a") as log:
            log.write(payload.id + "\n")
        command = payload.circuits[0].circuit.split()
        if command[0] == "sleep":
            time.sleep(float(command[1]))
        elif command[0] == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif command[0] == "fail":
            raise RuntimeError("boom")
        return xr.Dataset(attrs={"shots": payload.shots, "nonce": time.perf_counter_ns()})

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        shots = int(dataset.attrs["shots"])
        entry = {"counts": {"0": shots, "1": 0}, "shots": shots}
        return build_result(self.name, [entry]) | {"nonce": int(dataset.attrs["nonce"])}


class OptionsExecutor(ScriptedExecutor):
    """Writes the keyword options its constructor received to <data_dir>/options.json."""

    name = "options"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        assert self.data_dir is not None
        shown = {key: value for key, value in self.options.items() if key != "hardware_config"}
        (self.data_dir / "options.json").write_text(json.dumps(shown, default=str))
