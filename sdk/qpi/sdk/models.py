"""User-facing result types: frozen dataclasses built from the wire protos.

Protos never leak out of the SDK; each class has a private ``_from_proto`` used by
:class:`qpi.sdk.QPIClient`. Timestamps are timezone-aware UTC datetimes, or ``None``
when the server did not set them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from qpi.v1 import account_pb2, booking_pb2, job_pb2, notification_pb2, qpu_pb2

TERMINAL_STATES = frozenset({"completed", "failed", "cancelled"})


def _time(msg: Message, field: str) -> dt.datetime | None:
    if not msg.HasField(field):
        return None
    stamp = getattr(msg, field)
    result: dt.datetime = stamp.ToDatetime(tzinfo=dt.UTC)
    return result


def _enum_name(enum_type: Any, value: int, prefix: str) -> str:
    """``STATE_COMPLETED`` -> ``"completed"`` (``"unspecified"`` for unknown numbers)."""
    try:
        name: str = enum_type.Name(value)
    except ValueError:
        return "unspecified"
    return name.removeprefix(prefix).lower()


@dataclass(frozen=True, slots=True)
class Job:
    """A quantum job as last seen by the client.

    Example:
        >>> job = client.wait(client.submit_job([bell_qasm]).id)
        >>> job.state, job.counts
        ('completed', {'00': 509, '01': 0, '10': 0, '11': 515})
    """

    id: str
    state: str
    """One of ``pending``, ``running``, ``completed``, ``failed``, ``cancelled``."""
    user_id: str
    user_email: str
    qpu_id: str
    qpu_name: str
    shots: int
    num_circuits: int
    result: dict[str, Any] | None
    """The Qiskit-compatible result dict (``circuit_results``, ``counts``...) once completed."""
    error: str
    attempt: int
    charged_seconds: float
    created: dt.datetime | None
    updated: dt.datetime | None
    started: dt.datetime | None
    finished: dt.datetime | None

    @property
    def done(self) -> bool:
        """Whether the job reached a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def counts(self) -> dict[str, int] | None:
        """Counts of the first circuit (little-endian bitstrings), or ``None``."""
        if not self.result:
            return None
        counts = self.result.get("counts")
        if counts is None:
            entries = self.result.get("circuit_results") or [{}]
            counts = entries[0].get("counts")
        return dict(counts) if counts is not None else None

    @classmethod
    def _from_proto(cls, msg: job_pb2.Job) -> Job:
        result: dict[str, Any] | None = None
        if msg.result_json:
            parsed = json.loads(msg.result_json)
            result = parsed if isinstance(parsed, dict) else {"circuit_results": parsed}
        return cls(
            id=msg.id,
            state=_enum_name(job_pb2.Job.State, msg.state, "STATE_"),
            user_id=msg.user_id,
            user_email=msg.user_email,
            qpu_id=msg.qpu_id,
            qpu_name=msg.qpu_name,
            shots=msg.payload.shots,
            num_circuits=len(msg.payload.circuits),
            result=result,
            error=msg.error,
            attempt=msg.attempt,
            charged_seconds=msg.charged_seconds,
            created=_time(msg, "create_time"),
            updated=_time(msg, "update_time"),
            started=_time(msg, "start_time"),
            finished=_time(msg, "finish_time"),
        )


@dataclass(frozen=True, slots=True)
class InstructionProperties:
    """Calibration data of one instruction on specific qubits; None when unknown."""

    name: str
    qubits: tuple[int, ...]
    duration: float | None
    """Seconds."""
    error: float | None


@dataclass(frozen=True, slots=True)
class QpuCapabilities:
    """What the QPU's executing driver announced when it connected.

    ``meas_levels`` is empty when unknown (no driver connected yet, or one that does not
    describe itself); ``instructions`` holds per-qubit / per-pair durations and errors.
    """

    meas_levels: tuple[int, ...] = ()
    instructions: tuple[InstructionProperties, ...] = ()

    @classmethod
    def _from_proto(cls, msg: qpu_pb2.QpuCapabilities) -> QpuCapabilities:
        return cls(
            meas_levels=tuple(msg.meas_levels),
            instructions=tuple(
                InstructionProperties(
                    name=item.name,
                    qubits=tuple(item.qubits),
                    duration=item.duration_seconds if item.HasField("duration_seconds") else None,
                    error=item.error if item.HasField("error") else None,
                )
                for item in msg.instructions
            ),
        )


@dataclass(frozen=True, slots=True)
class Qpu:
    """A registered QPU. ``coupling_map`` is empty for all-to-all connectivity."""

    id: str
    name: str
    status: str
    """``online``, ``offline`` or ``maintenance``."""
    enabled: bool
    num_qubits: int
    coupling_map: tuple[tuple[int, int], ...]
    native_gates: tuple[str, ...]
    executor: str
    queue_length: int
    created: dt.datetime | None
    updated: dt.datetime | None
    capabilities: QpuCapabilities = QpuCapabilities()

    @classmethod
    def _from_proto(cls, msg: qpu_pb2.Qpu) -> Qpu:
        return cls(
            id=msg.id,
            name=msg.name,
            status=_enum_name(qpu_pb2.Qpu.Status, msg.status, "STATUS_"),
            enabled=msg.enabled,
            num_qubits=msg.num_qubits,
            coupling_map=tuple((e.source, e.target) for e in msg.coupling_map),
            native_gates=tuple(msg.native_gates),
            executor=msg.executor,
            queue_length=msg.queue_length,
            created=_time(msg, "create_time"),
            updated=_time(msg, "update_time"),
            capabilities=QpuCapabilities._from_proto(msg.capabilities),
        )


@dataclass(frozen=True, slots=True)
class Driver:
    """A driver registration (one daemon attached to one QPU)."""

    id: str
    name: str
    qpu_id: str
    kind: str
    language: str
    status: str
    enabled: bool
    host: str
    version: str
    transport: str
    last_seen: dt.datetime | None
    created: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: qpu_pb2.Driver) -> Driver:
        return cls(
            id=msg.id,
            name=msg.name,
            qpu_id=msg.qpu_id,
            kind=msg.kind,
            language=msg.language,
            status=_enum_name(qpu_pb2.Driver.Status, msg.status, "STATUS_"),
            enabled=msg.enabled,
            host=msg.host,
            version=msg.version,
            transport=msg.transport,
            last_seen=_time(msg, "last_seen_time"),
            created=_time(msg, "create_time"),
        )


@dataclass(frozen=True, slots=True)
class TimeSlot:
    """A booking of QPU time; ``qpu_id`` is empty when it books every QPU."""

    id: str
    user_id: str
    user_email: str
    qpu_id: str
    start: dt.datetime | None
    end: dt.datetime | None
    created: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: booking_pb2.TimeSlot) -> TimeSlot:
        return cls(
            id=msg.id,
            user_id=msg.user_id,
            user_email=msg.user_email,
            qpu_id=msg.qpu_id,
            start=_time(msg, "start_time"),
            end=_time(msg, "end_time"),
            created=_time(msg, "create_time"),
        )


@dataclass(frozen=True, slots=True)
class TimeRequest:
    """A request for more QPU seconds; ``state`` is pending, approved or rejected."""

    id: str
    user_id: str
    user_email: str
    seconds: float
    state: str
    requested_reason: str
    rejection_reason: str
    handled_by: str
    created: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: booking_pb2.TimeRequest) -> TimeRequest:
        return cls(
            id=msg.id,
            user_id=msg.user_id,
            user_email=msg.user_email,
            seconds=msg.seconds,
            state=_enum_name(booking_pb2.TimeRequest.State, msg.state, "STATE_"),
            requested_reason=msg.requested_reason,
            rejection_reason=msg.rejection_reason,
            handled_by=msg.handled_by,
            created=_time(msg, "create_time"),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """An announcement; ``target_user_ids`` is empty for broadcasts."""

    id: str
    title: str
    description: str
    target_user_ids: tuple[str, ...]
    start: dt.datetime | None
    end: dt.datetime | None
    dismissed: bool
    created: dt.datetime | None
    updated: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: notification_pb2.Notification) -> Notification:
        return cls(
            id=msg.id,
            title=msg.title,
            description=msg.description,
            target_user_ids=tuple(msg.target_user_ids),
            start=_time(msg, "start_time"),
            end=_time(msg, "end_time"),
            dismissed=msg.dismissed,
            created=_time(msg, "create_time"),
            updated=_time(msg, "update_time"),
        )


@dataclass(frozen=True, slots=True)
class User:
    """A QPI account and its QPU-seconds balance."""

    id: str
    email: str
    name: str
    qpu_seconds: float
    is_superuser: bool
    created: dt.datetime | None
    updated: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: account_pb2.User) -> User:
        return cls(
            id=msg.id,
            email=msg.email,
            name=msg.name,
            qpu_seconds=msg.qpu_seconds,
            is_superuser=msg.is_superuser,
            created=_time(msg, "create_time"),
            updated=_time(msg, "update_time"),
        )


@dataclass(frozen=True, slots=True)
class ApiToken:
    """API-token metadata; the raw secret is never part of it."""

    id: str
    user_id: str
    name: str
    prefix: str
    expires: dt.datetime | None
    created: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: account_pb2.ApiToken) -> ApiToken:
        return cls(
            id=msg.id,
            user_id=msg.user_id,
            name=msg.name,
            prefix=msg.prefix,
            expires=_time(msg, "expire_time"),
            created=_time(msg, "create_time"),
        )
