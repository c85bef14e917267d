"""The `qiskit_aer` executor: Qiskit Aer's AerSimulator (extra `aer`)."""

from __future__ import annotations

from typing import Any, ClassVar

from qpi.driver.executors._simulator import SimulatorExecutor


class QiskitAerExecutor(SimulatorExecutor):
    """Simulation with AerSimulator (automatic method selection)."""

    name: ClassVar[str] = "qiskit_aer"
    num_qubits: int | None = 24

    def _make_backend(self) -> Any:
        from qiskit_aer import AerSimulator

        # One thread per job: the driver runs one job at a time and the daemon process must
        # stay responsive on small machines.
        return AerSimulator(max_parallel_threads=1)
