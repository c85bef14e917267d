"""What an executor tells the server about its device, sent in the driver's hello.

The worker process builds a plain dict (`Executor.capabilities()`, picklable through the
pipe); the daemon turns it into the hello's fields with `hello_fields`. For gate-level
devices the coupling map, durations and meas levels come from the device config
(`device_config_capabilities`), so they are known without touching any instrument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from qpi.v1 import qpu_pb2

_QUBIT = re.compile(r"^q(\d+)$")
_EDGE = re.compile(r"^q(\d+)_q(\d+)$")
# Gates a transmon device config lowers to Rxy pulses (so they take the Rxy duration);
# the rest of the single-qubit set are virtual Z rotations (zero duration).
_RXY_GATES = frozenset({"x", "y", "sx", "sxdg", "rx", "ry", "u", "h"})
_VIRTUAL_GATES = frozenset({"z", "s", "sdg", "t", "tdg", "rz", "p"})
_NOT_INSTRUCTIONS = frozenset({"barrier", "delay"})
_TWO_QUBIT = frozenset({"cx", "cz", "swap", "cy", "ch", "crx", "cry", "crz", "cp", "ecr"})


def instruction(
    name: str,
    qubits: Iterable[int],
    duration: float | None = None,
    error: float | None = None,
) -> dict[str, Any]:
    """One calibrated instruction entry of `Capabilities["instructions"]`."""
    entry: dict[str, Any] = {"name": name, "qubits": [int(q) for q in qubits]}
    if duration is not None:
        entry["duration"] = float(duration)
    if error is not None:
        entry["error"] = float(error)
    return entry


def basic_capabilities(
    num_qubits: int | None,
    native_gates: Iterable[str],
    meas_levels: Iterable[int],
    coupling_map: Iterable[tuple[int, int]] = (),
    instructions: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The dict every executor reports; an empty coupling map means all-to-all."""
    return {
        "num_qubits": num_qubits,
        "native_gates": list(native_gates),
        "meas_levels": sorted(int(level) for level in meas_levels),
        "coupling_map": [[int(a), int(b)] for a, b in coupling_map],
        "instructions": list(instructions),
    }


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _seconds(settings: Any, *keys: str) -> float | None:
    """Sum of the named durations of a config section, None when any is missing."""
    if not isinstance(settings, Mapping):
        return None
    values = [_number(settings.get(key)) for key in keys]
    if any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


def device_config_capabilities(
    config: Mapping[str, Any], native_gates: Iterable[str], meas_levels: Iterable[int]
) -> dict[str, Any]:
    """Capabilities of a quantify/qblox device config (`q<i>` elements, `q<a>_q<b>` edges).

    The executors lower CZ (and CX, SWAP through it) onto whichever orientation the config
    defines, so every edge is reported in both directions. Durations come from the config
    where it states them: `rxy.duration` for pulsed single-qubit gates (virtual Z gates
    take no time), `measure.acq_delay + measure.integration_time`, `reset.duration` and
    `cz.square_duration`. The configs carry no error rates, so none are reported.
    """
    gates = list(native_gates)
    qubits = sorted(int(m.group(1)) for key in config if (m := _QUBIT.match(str(key))))
    pairs: list[tuple[int, int]] = []
    for key in config:
        match = _EDGE.match(str(key))
        if match:
            a, b = int(match.group(1)), int(match.group(2))
            pairs += [(a, b), (b, a)]
    coupling = sorted(set(pairs))
    entries: list[dict[str, Any]] = []
    for q in qubits:
        element = config.get(f"q{q}") or {}
        rxy = _seconds(element.get("rxy"), "duration")
        measure = _seconds(element.get("measure"), "acq_delay", "integration_time")
        reset = _seconds(element.get("reset"), "duration")
        for name in gates:
            if name in _NOT_INSTRUCTIONS or name in _TWO_QUBIT:
                continue
            duration = {"measure": measure, "reset": reset}.get(name)
            if name in _RXY_GATES:
                duration = rxy
            elif name in _VIRTUAL_GATES:
                duration = 0.0
            entries.append(instruction(name, [q], duration))
    for a, b in coupling:
        edge = config.get(f"q{a}_q{b}") or config.get(f"q{b}_q{a}") or {}
        cz = _seconds(edge.get("cz"), "square_duration")
        for name in gates:
            if name in _TWO_QUBIT:
                entries.append(instruction(name, [a, b], cz if name == "cz" else None))
    num_qubits = max(qubits) + 1 if qubits else None
    return basic_capabilities(num_qubits, gates, meas_levels, coupling, entries)


def hello_fields(capabilities: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `DriverHello` from a capabilities dict (unknown keys ignored).

    Tolerates a partial dict (user executors may report only num_qubits/native_gates).
    """
    num_qubits = capabilities.get("num_qubits")
    gates = capabilities.get("native_gates") or []
    edges = capabilities.get("coupling_map") or []
    levels = capabilities.get("meas_levels") or []
    entries = capabilities.get("instructions") or []
    return {
        "num_qubits": num_qubits if isinstance(num_qubits, int) else 0,
        "native_gates": [str(g) for g in gates],
        "coupling_map": [qpu_pb2.CouplingEdge(source=int(a), target=int(b)) for a, b in edges],
        "capabilities": qpu_pb2.QpuCapabilities(
            meas_levels=[int(level) for level in levels],
            instructions=[_instruction_proto(e) for e in entries],
        ),
    }


def _instruction_proto(entry: Mapping[str, Any]) -> qpu_pb2.InstructionProperties:
    message = qpu_pb2.InstructionProperties(
        name=str(entry["name"]), qubits=[int(q) for q in entry.get("qubits", [])]
    )
    if entry.get("duration") is not None:
        message.duration_seconds = float(entry["duration"])
    if entry.get("error") is not None:
        message.error = float(entry["error"])
    return message
