"""A QPU row and its domain record: shared by the QPU store and the submits that read
the QPU they name together with their owner (:mod:`qpi.server.store.jobs`)."""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from typing import Any

from sqlalchemy import bindparam, or_
from sqlalchemy import select as core_select

from qpi.server.domain.models import InstructionProperties, Qpu, QpuCapabilities
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import QPUS, QpuRow


def to_qpu(row: QpuRow | Any) -> Qpu:
    """The domain record of a QPU row."""
    return Qpu(
        id=row.id,
        name=row.name,
        enabled=row.enabled,
        status=row.status,
        num_qubits=row.num_qubits,
        coupling_map=_coupling_map(row.coupling_map_json),
        native_gates=_native_gates(row.native_gates_json),
        executor=row.executor,
        created=row.created,
        updated=row.updated,
        capabilities=parse_capabilities(row.capabilities_json),
    )


def capabilities_json(caps: QpuCapabilities) -> str:
    """The stored form of a QPU's capabilities (unknown durations/errors omitted)."""
    instructions = []
    for entry in caps.instructions:
        item: dict[str, object] = {"name": entry.name, "qubits": list(entry.qubits)}
        if entry.duration_seconds is not None:
            item["duration"] = entry.duration_seconds
        if entry.error is not None:
            item["error"] = entry.error
        instructions.append(item)
    return json.dumps({"meas_levels": list(caps.meas_levels), "instructions": instructions})


# A QPU's descriptions change when its driver reconnects, yet are read on every submit
# that routes to it: their parsed (immutable) forms are kept per stored text.
_PARSED_KEPT = 64


@functools.lru_cache(maxsize=_PARSED_KEPT)
def _coupling_map(text: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(a), int(b)) for a, b in json.loads(text))


@functools.lru_cache(maxsize=_PARSED_KEPT)
def _native_gates(text: str) -> tuple[str, ...]:
    return tuple(str(g) for g in json.loads(text))


@functools.lru_cache(maxsize=_PARSED_KEPT)
def parse_capabilities(text: str) -> QpuCapabilities:
    """Reads `capabilities_json` back ("{}" for QPUs no driver has described yet)."""
    data = json.loads(text or "{}")
    return QpuCapabilities(
        meas_levels=tuple(int(level) for level in data.get("meas_levels", [])),
        instructions=tuple(
            InstructionProperties(
                name=str(item["name"]),
                qubits=tuple(int(q) for q in item.get("qubits", [])),
                duration_seconds=_optional_float(item.get("duration")),
                error=_optional_float(item.get("error")),
            )
            for item in data.get("instructions", [])
        ),
    )


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


# A QPU row read by a prepared statement, with the table's column names.
_QpuColumns = namedtuple("_QpuColumns", [column.name for column in QPUS.c])  # type: ignore[misc]

QPU_BY_KEY = Prepared(
    core_select(QPUS)
    .where(or_(QPUS.c.id == bindparam("key"), QPUS.c.name == bindparam("key")))
    .order_by((QPUS.c.id == bindparam("key")).desc())
    .limit(1)
)
"""A QPU by id, else by name, in one statement (an id match wins)."""


def qpu_of_row(row: Any) -> Qpu:
    """The domain record of a row :data:`QPU_BY_KEY` read."""
    return to_qpu(_QpuColumns._make(row))
