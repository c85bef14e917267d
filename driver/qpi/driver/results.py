"""Builders for the Qiskit-compatible result dict and raw-data persistence."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr
    from qiskit import QuantumCircuit

log = logging.getLogger(__name__)

# Zero-filling 2^n states is what clients expect, but above this width the dict would be
# megabytes of zeros, so only observed states are listed.
ZERO_FILL_MAX_BITS = 16


def bitstring(value: int, width: int) -> str:
    """Formats an outcome as a little-endian bitstring (clbit 0 is the rightmost char)."""
    return format(value, f"0{width}b") if width else ""


def dense_counts(observed: Mapping[int, int], width: int) -> dict[str, int]:
    """Returns counts keyed by bitstring with every one of the 2^width states present.

    Args:
        observed: Outcome (clbit i is bit i of the integer) to number of shots.
        width: Number of classical bits.
    """
    if width > ZERO_FILL_MAX_BITS:
        return {bitstring(k, width): int(v) for k, v in sorted(observed.items())}
    counts = dict.fromkeys((bitstring(k, width) for k in range(1 << width)), 0)
    for key, value in observed.items():
        counts[bitstring(int(key), width)] += int(value)
    return counts


def outcomes_from_bits(bits: np.ndarray) -> dict[int, int]:
    """Turns a (shots, clbits) 0/1 array into outcome counts (clbit i -> bit i)."""
    if bits.ndim != 2 or bits.shape[1] == 0:
        return {0: int(bits.shape[0])} if bits.ndim == 2 else {}
    weights = np.left_shift(np.int64(1), np.arange(bits.shape[1], dtype=np.int64))
    values = bits.astype(np.int64) @ weights
    keys, counts = np.unique(values, return_counts=True)
    return {int(k): int(c) for k, c in zip(keys, counts, strict=True)}


def iq_memory(iq: np.ndarray, average: bool) -> list[Any]:
    """Formats complex IQ points (shots, channels) as nested [I, Q] lists.

    Args:
        iq: Complex array with shape (shots, channels).
        average: Return the shot average `[[[I, Q] per channel]]` instead of per-shot values.
    """
    data = iq.mean(axis=0, keepdims=True) if average else iq
    stacked = np.stack([data.real, data.imag], axis=-1)
    memory: list[Any] = stacked.tolist()
    return memory


def circuit_header(circuit: QuantumCircuit) -> dict[str, Any]:
    """The Qiskit experiment header of a circuit's results.

    Clients (Qiskit's `Result.get_counts`, the published qpi-client) format count keys
    from it: `memory_slots` gives the zero-padded width ('00', not '0') and `creg_sizes`
    splits keys per classical register. Clbits outside any register are labelled by
    their index under the empty register name.
    """
    labels: list[list[Any]] = []
    for index, clbit in enumerate(circuit.clbits):
        registers = circuit.find_bit(clbit).registers
        labels.append([registers[0][0].name, registers[0][1]] if registers else ["", index])
    return {
        "memory_slots": circuit.num_clbits,
        "creg_sizes": [[creg.name, creg.size] for creg in circuit.cregs],
        "clbit_labels": labels,
    }


def header_attr(value: Any) -> dict[str, Any] | None:
    """Reads back a header stored in dataset attrs (a dict, or JSON once saved)."""
    if isinstance(value, str) and value:
        value = json.loads(value)
    return value if isinstance(value, dict) else None


def build_result(backend: str, entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Assembles the top-level result dict.

    Args:
        backend: Backend name reported to the user.
        entries: One entry per circuit x parameter set, each with `shots` and `counts`
            or `memory`, and the circuit's `header` when known.

    Returns:
        `{"shots", "backend", "success", "circuit_results", "counts"|"memory"}` where the
        top-level shots and counts/memory mirror the first entry.
    """
    circuit_results = list(entries)
    result: dict[str, Any] = {
        "shots": circuit_results[0]["shots"] if circuit_results else 0,
        "backend": backend,
        "success": True,
        "circuit_results": circuit_results,
    }
    if circuit_results:
        for key in ("counts", "memory"):
            if key in circuit_results[0]:
                result[key] = circuit_results[0][key]
    return result


def save_dataset(dataset: xr.Dataset, path: Path) -> None:
    """Writes a dataset as NetCDF (h5netcdf), splitting complex variables into real/imag.

    Complex values are not valid NetCDF, so each complex variable `v` becomes `v_real` and
    `v_imag`; attributes that NetCDF cannot hold (dicts, nested lists) are stored as JSON.
    """
    import xarray as xr

    variables: dict[str, Any] = {}
    for name, variable in dataset.data_vars.items():
        if np.iscomplexobj(variable.values):
            variables[f"{name}_real"] = variable.real
            variables[f"{name}_imag"] = variable.imag
        else:
            variables[str(name)] = variable
    out = xr.Dataset(variables, attrs={k: _netcdf_attr(v) for k, v in dataset.attrs.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_netcdf(path, engine="h5netcdf")


def _netcdf_attr(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.number):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str)
