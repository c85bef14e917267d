"""Turning user circuit inputs (QASM text, dicts, Qiskit circuits) into ``Circuit`` protos."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from qpi.v1 import job_pb2

ParameterValues = Mapping[Any, float] | Sequence[float] | Sequence[Sequence[float]]
"""One binding (a mapping or a flat list) or several bindings (a list of lists)."""


def _is_quantum_circuit(obj: object) -> bool:
    # Checked by name so that plain QASM users never import qiskit.
    return any(
        cls.__name__ == "QuantumCircuit" and cls.__module__.startswith("qiskit")
        for cls in type(obj).__mro__
    )


def to_qasm(circuit: Any) -> str:
    """Serialises a Qiskit ``QuantumCircuit`` as OpenQASM 3 (``str`` passes through).

    Example:
        >>> from qiskit import QuantumCircuit
        >>> bell = QuantumCircuit(2, 2)
        >>> _ = bell.h(0), bell.cx(0, 1), bell.measure([0, 1], [0, 1])
        >>> to_qasm(bell).startswith("OPENQASM 3.0;")
        True
    """
    if isinstance(circuit, str):
        return circuit
    if not _is_quantum_circuit(circuit):
        raise TypeError(f"expected QASM text or a qiskit QuantumCircuit, got {type(circuit)!r}")
    from qiskit import qasm3

    text: str = qasm3.dumps(circuit)
    return text


def bind(circuit: Any, values: Mapping[Any, float] | Sequence[float]) -> Any:
    """Returns ``circuit`` with its parameters bound (by name, Parameter, or in order)."""
    if isinstance(values, Mapping):
        by_name = {p.name: p for p in circuit.parameters}
        resolved = {by_name.get(k, k) if isinstance(k, str) else k: v for k, v in values.items()}
        return circuit.assign_parameters(resolved)
    return circuit.assign_parameters(list(values))


def parameter_sets(values: ParameterValues | None) -> list[job_pb2.ParameterSet]:
    """Normalises a flat list (one set) or a list of lists (several sets) into protos."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        return [job_pb2.ParameterSet(values=[float(v) for v in values.values()])]
    items: list[Any] = list(values)
    if items and all(isinstance(v, Real) for v in items):
        return [job_pb2.ParameterSet(values=[float(v) for v in items])]
    sets: list[job_pb2.ParameterSet] = []
    for row in items:
        if not isinstance(row, Iterable):
            raise TypeError("parameter_values must be a list of numbers or a list of lists")
        sets.append(job_pb2.ParameterSet(values=[float(v) for v in row]))
    return sets


def to_circuit_proto(item: Any) -> job_pb2.Circuit:
    """Converts one submit_job entry into a ``Circuit`` proto.

    Accepted forms: QASM text, a Qiskit ``QuantumCircuit``, or a dict with ``circuit`` or
    ``qasm`` (either form), optional ``parameter_values`` and optional ``shots``. A mapping
    of parameter values on a ``QuantumCircuit`` is bound client-side.

    Raises:
        TypeError: The entry has an unsupported type.
        ValueError: A dict entry has neither ``circuit`` nor ``qasm``.
    """
    if not isinstance(item, Mapping):
        return job_pb2.Circuit(qasm=to_qasm(item))
    source = item.get("circuit", item.get("qasm"))
    if source is None:
        raise ValueError("a circuit entry needs a 'circuit' or 'qasm' key")
    values = item.get("parameter_values")
    if isinstance(values, Mapping) and _is_quantum_circuit(source):
        source, values = bind(source, values), None
    return job_pb2.Circuit(
        qasm=to_qasm(source),
        parameter_values=parameter_sets(values),
        shots=int(item.get("shots") or 0),
    )


_MEAS_RETURN = {
    "single": job_pb2.MEAS_RETURN_SINGLE,
    "avg": job_pb2.MEAS_RETURN_AVG,
}


def build_payload(
    circuits: Any,
    *,
    shots: int,
    meas_level: int,
    meas_return: str,
    acq_rotation: float | None = None,
    acq_threshold: float | None = None,
) -> job_pb2.JobPayload:
    """Builds a ``JobPayload``; a single circuit (not in a list) is accepted too.

    ``acq_rotation``/``acq_threshold`` are sent only when given (None leaves the device's
    own discrimination settings in charge).

    Raises:
        ValueError: No circuits, or an unknown ``meas_return``.
    """
    if isinstance(circuits, str | Mapping) or _is_quantum_circuit(circuits):
        circuits = [circuits]
    protos = [to_circuit_proto(c) for c in circuits]
    if not protos:
        raise ValueError("submit at least one circuit")
    try:
        mode = _MEAS_RETURN[meas_return.lower()]
    except KeyError:
        raise ValueError(f"meas_return must be 'single' or 'avg', not {meas_return!r}") from None
    return job_pb2.JobPayload(
        circuits=protos,
        shots=shots,
        meas_level=meas_level,
        meas_return=mode,
        acq_rotation=None if acq_rotation is None else float(acq_rotation),
        acq_threshold=None if acq_threshold is None else float(acq_threshold),
    )
