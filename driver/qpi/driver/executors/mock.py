"""The `mock` executor: Qiskit's BasicSimulator, no extra dependencies.

meas_level 2 returns counts, meas_level 1 returns synthetic IQ points derived from the
simulated bits, meas_level 0 (raw traces) is rejected with a precise error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from qpi.driver.executors._simulator import SimulatorExecutor


class MockExecutor(SimulatorExecutor):
    """Statevector simulation with Qiskit's BasicSimulator."""

    name: ClassVar[str] = "mock"
    # BasicSimulator is a dense statevector simulator; 16 qubits keeps a job under a second.
    num_qubits: int | None = 16

    def _make_backend(self) -> Any:
        from qiskit.providers.basic_provider import BasicSimulator

        return BasicSimulator()
