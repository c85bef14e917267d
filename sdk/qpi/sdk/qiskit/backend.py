"""``QPIBackend``: a Qiskit ``BackendV2`` bound to one QPI QPU."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any, TypeGuard

from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target

from qpi.sdk._circuits import bind, parameter_sets
from qpi.sdk.models import Qpu
from qpi.sdk.qiskit._result import BACKEND_VERSION, header_for
from qpi.sdk.qiskit._target import build_target
from qpi.sdk.qiskit.job import QPIJob

if TYPE_CHECKING:
    from qpi.sdk.client import QPIClient


def _is_single_binding(values: Any) -> TypeGuard[Mapping[Any, float] | Sequence[float]]:
    if values is None:
        return False
    if isinstance(values, Mapping):
        return True
    return isinstance(values, Sequence) and all(isinstance(v, Real) for v in values)


class QPIBackend(BackendV2):  # type: ignore[misc]
    """Runs circuits on one QPU of a QPI server; jobs always target that QPU.

    Options: ``shots`` (1024), ``meas_level`` (2), ``meas_return`` ("single"),
    ``parameter_values`` (None: per circuit, a mapping or flat list binds client-side and
    a list of lists is sent as parameter sets), ``memory`` (False: per-shot bitstrings),
    ``seed_simulator`` (accepted for primitives; seeds the order of rebuilt memory),
    ``acq_rotation``/``acq_threshold`` (None: IQ discrimination of meas_level 2 as the
    device config sets it).

    Example:
        >>> from qiskit import QuantumCircuit
        >>> backend = client.get_backend("qpu-1")
        >>> bell = QuantumCircuit(2, 2)
        >>> _ = bell.h(0), bell.cx(0, 1), bell.measure([0, 1], [0, 1])
        >>> backend.run(bell, shots=1000).result().get_counts()
        {'00': 498, '01': 0, '10': 0, '11': 502}
    """

    def __init__(self, client: QPIClient, qpu: Qpu, provider: Any = None) -> None:
        super().__init__(
            provider=provider,
            name=qpu.name,
            description=f"QPI QPU {qpu.name} ({qpu.id})",
            backend_version=BACKEND_VERSION,
        )
        self._client = client
        self._qpu = qpu
        self._target = build_target(qpu)

    @property
    def qpu(self) -> Qpu:
        """The QPU as it was when the backend was created."""
        return self._qpu

    @property
    def target(self) -> Target:
        """Native gates on the coupling map (or a generic all-to-all target)."""
        return self._target

    @property
    def max_circuits(self) -> None:
        """No limit on circuits per job."""
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options(
            shots=1024,
            meas_level=2,
            meas_return="single",
            parameter_values=None,
            memory=False,
            seed_simulator=None,
            acq_rotation=None,
            acq_threshold=None,
        )

    def _merged_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(self.options.__dict__)
        for key, value in overrides.items():
            if key not in merged:
                warnings.warn(f"QPIBackend ignores unknown option {key!r}", stacklevel=3)
                continue
            merged[key] = value
        return merged

    def run(self, run_input: Any, **options: Any) -> QPIJob:
        """Submits one or more circuits (or QASM strings) as one job on this QPU.

        Args:
            run_input: A ``QuantumCircuit``, OpenQASM text, or a list of them.
            **options: Overrides of the backend options for this run.

        Returns:
            The submitted job; ``job.result()`` waits over the server's stream.

        Raises:
            InvalidQasmError: The server could not parse a circuit.
            InsufficientQpuSecondsError: The caller's balance is exhausted.
        """
        opts = self._merged_options(options)
        circuits = list(run_input) if isinstance(run_input, list | tuple) else [run_input]
        values = opts["parameter_values"]
        if values is not None and len(circuits) == 1 and _is_single_binding(values):
            values = [values]
        entries: list[dict[str, Any]] = []
        headers: list[dict[str, Any] | None] = []
        for index, circuit in enumerate(circuits):
            circuit_values = values[index] if values is not None else None
            if isinstance(circuit, QuantumCircuit) and _is_single_binding(circuit_values):
                circuit, circuit_values = bind(circuit, circuit_values), None
            sets = parameter_sets(circuit_values)
            header = header_for(circuit) if isinstance(circuit, QuantumCircuit) else None
            headers.extend([header] * max(len(sets), 1))
            entries.append({"circuit": circuit, "parameter_values": circuit_values})
        job = self._client.submit_job(
            entries,
            shots=int(opts["shots"]),
            meas_level=int(opts["meas_level"]),
            meas_return=str(opts["meas_return"]),
            qpu_target=self._qpu.id,
            acq_rotation=opts["acq_rotation"],
            acq_threshold=opts["acq_threshold"],
        )
        return QPIJob(
            self,
            job.id,
            self._client,
            headers=headers,
            meas_level=int(opts["meas_level"]),
            memory=bool(opts["memory"]),
            seed=opts["seed_simulator"],
        )
