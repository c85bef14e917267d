"""Converting QPI's result dict (original spec §5.5) into a Qiskit ``Result``."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from qiskit.result import Result

from qpi.sdk.models import Job

BACKEND_VERSION = "0.1.0"


def header_for(circuit: Any) -> dict[str, Any]:
    """The experiment header Qiskit needs to format counts: register sizes and names.

    Example:
        >>> header_for(QuantumCircuit(2, 2, name="bell"))
        {'name': 'bell', 'creg_sizes': [['c', 2]], 'memory_slots': 2, 'n_qubits': 2, ...}
    """
    return {
        "name": circuit.name,
        "creg_sizes": [[creg.name, creg.size] for creg in circuit.cregs],
        "memory_slots": circuit.num_clbits,
        "n_qubits": circuit.num_qubits,
        "metadata": dict(circuit.metadata or {}),
    }


def _to_hex(key: str) -> str:
    key = key.replace(" ", "")
    if key.startswith("0x"):
        return key
    return hex(int(key, 2)) if key else "0x0"


def _key_width(counts: Mapping[str, int]) -> int:
    widths = [len(k.replace(" ", "")) for k in counts if not k.startswith("0x")]
    return max(widths, default=0)


def _entries(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = raw.get("circuit_results")
    if isinstance(entries, list) and entries:
        return entries
    return [raw]


def _memory_from_counts(hex_counts: Mapping[str, int], seed: int | None) -> list[str]:
    # The server reports level-2 results as counts only; per-shot memory is rebuilt from
    # them in random order, which is all a counts-only sample can faithfully say.
    shots = [key for key, n in hex_counts.items() for _ in range(int(n))]
    random.Random(seed).shuffle(shots)
    return shots


def _experiment(
    entry: Mapping[str, Any],
    header: dict[str, Any] | None,
    *,
    meas_level: int,
    memory: bool,
    seed: int | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    counts = entry.get("counts") or entry.get("hex_counts")
    raw_memory = entry.get("memory")
    if meas_level == 2 and counts is not None:
        if header is None:
            width = _key_width(counts)
            header = {"creg_sizes": [["c", width]], "memory_slots": width}
        data["counts"] = {}
        for key, value in counts.items():
            hex_key = _to_hex(key)
            data["counts"][hex_key] = data["counts"].get(hex_key, 0) + int(value)
        if raw_memory:
            data["memory"] = [_to_hex(str(m)) for m in raw_memory]
        elif memory:
            data["memory"] = _memory_from_counts(data["counts"], seed)
    elif raw_memory is not None:
        data["memory"] = raw_memory
    shots = entry.get("shots") or sum(int(v) for v in (counts or {}).values())
    experiment: dict[str, Any] = {
        "shots": int(shots),
        "success": True,
        "data": data,
        "meas_level": meas_level,
    }
    if header is not None:
        experiment["header"] = header
    return experiment


def to_qiskit_result(
    job: Job,
    *,
    backend_name: str,
    headers: Sequence[dict[str, Any] | None] | None = None,
    meas_level: int = 2,
    memory: bool = False,
    seed: int | None = None,
) -> Result:
    """Builds a Qiskit ``Result`` from a completed job.

    Args:
        job: A job in state ``completed``.
        backend_name: Reported as ``Result.backend_name``.
        headers: One header per result entry (see :func:`header_for`); without them the
            entry's own ``header`` (set by QPI drivers) is used, else the count-key width
            as a single register, so keys stay zero-padded.
        meas_level: The measurement level the job ran with.
        memory: Provide per-shot memory, rebuilding it from counts when necessary.
        seed: Seed for the order of rebuilt memory.

    Raises:
        ValueError: The job has no result.
    """
    if job.result is None:
        raise ValueError(f"job {job.id} has no result (state {job.state})")
    entries = _entries(job.result)
    experiments = []
    for index, entry in enumerate(entries):
        header = headers[index] if headers and index < len(headers) else None
        if header is None and isinstance(entry.get("header"), Mapping):
            header = entry["header"]  # the driver's header, for circuits sent as QASM text
        header = dict(header) if header is not None else None
        experiments.append(
            _experiment(entry, header, meas_level=meas_level, memory=memory, seed=seed)
        )
    return Result.from_dict(
        {
            "backend_name": backend_name,
            "backend_version": BACKEND_VERSION,
            "job_id": job.id,
            "qobj_id": job.id,
            "success": True,
            "results": experiments,
        }
    )
