"""OpenQASM loading and expansion of a job into runs (circuit x parameter set)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qpi.driver.payload import JobPayload

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

_HEADER = re.compile(r"^\s*OPENQASM\s+(\d+)(?:\.\d+)?\s*;", re.MULTILINE)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Run:
    """One execution unit: a bound circuit and its shots.

    Attributes:
        circuit_index: Index of the source circuit in the job.
        circuit: The parsed circuit with parameters bound.
        shots: Shots for this run.
    """

    circuit_index: int
    circuit: QuantumCircuit
    shots: int


def qasm_version(source: str) -> int:
    """Returns the major OpenQASM version declared by the header.

    Raises:
        ValueError: If there is no header or the version is not 2 or 3.
    """
    # Comments may precede the header, so they are removed before matching the first statement.
    stripped = _COMMENT.sub("", source).lstrip()
    match = _HEADER.match(stripped)
    if match is None:
        raise ValueError("missing 'OPENQASM 2.0;' or 'OPENQASM 3.0;' header")
    version = int(match.group(1))
    if version not in (2, 3):
        raise ValueError(f"unsupported OpenQASM version {version}")
    return version


def load_circuit(source: str, index: int) -> QuantumCircuit:
    """Parses one OpenQASM 2 or 3 circuit.

    Args:
        source: The QASM text.
        index: Circuit index, for the error message.

    Returns:
        The circuit.

    Raises:
        ValueError: "Failed to parse QASM circuit <index>: <detail>".
    """
    from qiskit import qasm2, qasm3

    try:
        if qasm_version(source) == 2:
            return qasm2.loads(source, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        try:
            # The native parser is ~100x faster than the ANTLR importer on first use; the
            # importer stays as the fallback because it accepts more of the language.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return qasm3.loads_experimental(source)
        except Exception:  # noqa: BLE001 - any failure is retried with the reference parser
            return qasm3.loads(source)
    except Exception as exc:  # noqa: BLE001 - parser errors come in many classes
        detail = str(exc).strip() or type(exc).__name__
        raise ValueError(f"Failed to parse QASM circuit {index}: {detail}") from exc


def expand_runs(payload: JobPayload, max_qubits: int | None) -> list[Run]:
    """Parses every circuit and binds every parameter set.

    Args:
        payload: The job.
        max_qubits: Qubits available on the device, or None for no limit.

    Returns:
        One run per circuit x parameter set, in order (a circuit without sets gives one run).

    Raises:
        ValueError: On parse errors, too many qubits or bad parameter sets.
    """
    runs: list[Run] = []
    for index, item in enumerate(payload.circuits):
        circuit = load_circuit(item.circuit, index)
        if max_qubits is not None and circuit.num_qubits > max_qubits:
            raise ValueError(
                f"circuit {index} uses {circuit.num_qubits} qubits but the device has {max_qubits}"
            )
        shots = payload.shots_for(index)
        parameters = list(circuit.parameters)
        sets = item.parameter_values or []
        if parameters and not sets:
            names = ", ".join(p.name for p in parameters)
            raise ValueError(f"circuit {index} has unbound parameters: {names}")
        if not sets:
            runs.append(Run(index, circuit, shots))
            continue
        for set_index, values in enumerate(sets):
            if len(values) != len(parameters):
                raise ValueError(
                    f"circuit {index} has {len(parameters)} parameters but parameter set "
                    f"{set_index} has {len(values)} values"
                )
            bound = circuit.assign_parameters(values) if parameters else circuit
            runs.append(Run(index, bound, shots))
    return runs
