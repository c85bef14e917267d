"""Domain record ⇄ protobuf conversion, one function per resource."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from qpi.server.domain.errors import FailedPreconditionError, InvalidArgumentError
from qpi.server.domain.jobs import CircuitSpec
from qpi.server.domain.models import (
    ApiToken,
    Driver,
    InstructionProperties,
    Job,
    NotificationView,
    Qpu,
    QpuCapabilities,
    TelemetryEvent,
    TimeRequest,
    TimeSlot,
    User,
)
from qpi.server.services.job_service import SubmitRequest
from qpi.v1 import (
    account_pb2,
    admin_service_pb2,
    booking_pb2,
    job_pb2,
    notification_pb2,
    qpu_pb2,
)

_JOB_STATES = {
    "pending": job_pb2.Job.STATE_PENDING,
    "running": job_pb2.Job.STATE_RUNNING,
    "completed": job_pb2.Job.STATE_COMPLETED,
    "failed": job_pb2.Job.STATE_FAILED,
    "cancelled": job_pb2.Job.STATE_CANCELLED,
}
JOB_STATE_NAMES = {v: k for k, v in _JOB_STATES.items()}
_QPU_STATUS = {
    "online": qpu_pb2.Qpu.STATUS_ONLINE,
    "offline": qpu_pb2.Qpu.STATUS_OFFLINE,
    "maintenance": qpu_pb2.Qpu.STATUS_MAINTENANCE,
}
_REQUEST_STATES = {
    "pending": booking_pb2.TimeRequest.STATE_PENDING,
    "approved": booking_pb2.TimeRequest.STATE_APPROVED,
    "rejected": booking_pb2.TimeRequest.STATE_REJECTED,
}
REQUEST_STATE_NAMES = {v: k for k, v in _REQUEST_STATES.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf timestamp, or None for unset (naive values are local time, as for
    ``astimezone``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    # What Timestamp.FromDatetime computes, without its struct_time round trip (listings
    # convert four dates a row).
    delta = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def from_ts(value: timestamp_pb2.Timestamp, field: str = "timestamp") -> datetime:
    """An aware UTC datetime from a protobuf timestamp (INVALID_ARGUMENT if out of range)."""
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgumentError(
            "INVALID_FIELD", f"{field} is not a valid timestamp (years 1-9999).", field=field
        ) from exc


def payload(doc: dict[str, Any]) -> job_pb2.JobPayload:
    """The stored payload document as a JobPayload message."""
    out = job_pb2.JobPayload(
        shots=int(doc.get("shots") or 0),
        meas_level=int(doc.get("meas_level", 2)),
        meas_return=job_pb2.MEAS_RETURN_AVG
        if doc.get("meas_return") == "avg"
        else job_pb2.MEAS_RETURN_SINGLE,
    )
    for c in doc.get("circuits", []):
        circuit = out.circuits.add(qasm=c.get("circuit", ""), shots=int(c.get("shots") or 0))
        for values in c.get("parameter_values") or []:
            circuit.parameter_values.add(values=[float(v) for v in values])
    if doc.get("acq_rotation") is not None:
        out.acq_rotation = float(doc["acq_rotation"])
    if doc.get("acq_threshold") is not None:
        out.acq_threshold = float(doc["acq_threshold"])
    return out


def submit_request(p: job_pb2.JobPayload, qpu: str, request_id: str) -> SubmitRequest:
    """A CreateJob payload as a service request."""
    return SubmitRequest(
        circuits=[
            CircuitSpec(c.qasm, tuple(tuple(ps.values) for ps in c.parameter_values), c.shots)
            for c in p.circuits
        ],
        shots=p.shots,
        meas_level=p.meas_level if p.HasField("meas_level") else None,
        meas_return="avg" if p.meas_return == job_pb2.MEAS_RETURN_AVG else "single",
        qpu=qpu,
        request_id=request_id,
        acq_rotation=p.acq_rotation if p.HasField("acq_rotation") else None,
        acq_threshold=p.acq_threshold if p.HasField("acq_threshold") else None,
    )


def job(row: Job, qpu_name: str = "", user_email: str = "") -> job_pb2.Job:
    """A job as a message."""
    return job_pb2.Job(
        id=row.id,
        user_id=row.user_id,
        qpu_id=row.qpu_id,
        payload=payload(json.loads(row.payload_json)),
        state=_JOB_STATES[row.state],
        result_json=row.result_json or "",
        error=row.error or "",
        attempt=row.attempt,
        charged_seconds=row.charged_seconds,
        create_time=ts(row.created),
        update_time=ts(row.updated),
        start_time=ts(row.started_at),
        finish_time=ts(row.finished_at),
        user_email=user_email,
        # A deleted QPU's jobs keep the name it had.
        qpu_name=qpu_name or row.qpu_name,
    )


def qpu(row: Qpu, queue_length: int = 0) -> qpu_pb2.Qpu:
    """A QPU as a message."""
    return qpu_pb2.Qpu(
        id=row.id,
        name=row.name,
        status=_QPU_STATUS.get(row.status, qpu_pb2.Qpu.STATUS_OFFLINE),
        enabled=row.enabled,
        num_qubits=row.num_qubits,
        coupling_map=[qpu_pb2.CouplingEdge(source=a, target=b) for a, b in row.coupling_map],
        native_gates=list(row.native_gates),
        executor=row.executor,
        queue_length=queue_length,
        create_time=ts(row.created),
        update_time=ts(row.updated),
        capabilities=capabilities(row.capabilities),
    )


def capabilities(caps: QpuCapabilities) -> qpu_pb2.QpuCapabilities:
    """A QPU's announced capabilities as a message."""
    out = qpu_pb2.QpuCapabilities(meas_levels=list(caps.meas_levels))
    for entry in caps.instructions:
        item = out.instructions.add(name=entry.name, qubits=list(entry.qubits))
        if entry.duration_seconds is not None:
            item.duration_seconds = entry.duration_seconds
        if entry.error is not None:
            item.error = entry.error
    return out


MAX_HELLO_EDGES = 10_000
"""Coupling edges a hello may list (a 1,000-qubit heavy-hex lattice has ~2,400)."""
MAX_HELLO_INSTRUCTIONS = 20_000
"""Calibrated instruction entries a hello may list (stored as one JSON document)."""
_MAX_QUBIT_INDEX = 1 << 20


def _too_many(what: str, count: int, limit: int) -> FailedPreconditionError:
    return FailedPreconditionError(
        "PROTOCOL_VIOLATION",
        f"The hello lists {count} {what}; at most {limit} are accepted.",
        metadata={"count": count, "limit": limit},
    )


def _qubit_index(value: int) -> int:
    if not 0 <= value < _MAX_QUBIT_INDEX:
        raise FailedPreconditionError(
            "PROTOCOL_VIOLATION",
            f"The hello names qubit {value}; qubit indices must be in [0, {_MAX_QUBIT_INDEX}).",
            metadata={"qubit": value},
        )
    return value


def hello_coupling(edges: Sequence[qpu_pb2.CouplingEdge]) -> tuple[tuple[int, int], ...]:
    """The coupling map of a driver hello, bounded before anything is stored.

    Raises:
        FailedPreconditionError: ``PROTOCOL_VIOLATION`` for too many edges or a
            negative/huge qubit index.
    """
    if len(edges) > MAX_HELLO_EDGES:
        raise _too_many("coupling edges", len(edges), MAX_HELLO_EDGES)
    return tuple((_qubit_index(e.source), _qubit_index(e.target)) for e in edges)


def hello_capabilities(msg: qpu_pb2.QpuCapabilities) -> QpuCapabilities:
    """The capabilities of a driver hello: meas levels (0-2 only) and bounded calibration.

    Raises:
        FailedPreconditionError: ``PROTOCOL_VIOLATION`` when the hello exceeds the bounds.
    """
    if len(msg.instructions) > MAX_HELLO_INSTRUCTIONS:
        raise _too_many("instructions", len(msg.instructions), MAX_HELLO_INSTRUCTIONS)
    entries = []
    for item in msg.instructions:
        if len(item.qubits) > 3 or not 0 < len(item.name) <= 64:
            raise FailedPreconditionError(
                "PROTOCOL_VIOLATION",
                "Each hello instruction needs a name of 1-64 characters and 1-3 qubits.",
            )
        entries.append(
            InstructionProperties(
                name=item.name,
                qubits=tuple(_qubit_index(q) for q in item.qubits),
                duration_seconds=_finite(item.duration_seconds)
                if item.HasField("duration_seconds")
                else None,
                error=_finite(item.error) if item.HasField("error") else None,
            )
        )
    levels = tuple(sorted({level for level in msg.meas_levels if level in (0, 1, 2)}))
    return QpuCapabilities(meas_levels=levels, instructions=tuple(entries))


def _finite(value: float) -> float | None:
    # NaN/inf cannot be stored as JSON; an unusable number is treated as unknown.
    return value if math.isfinite(value) and value >= 0 else None


def driver(row: Driver) -> qpu_pb2.Driver:
    """A driver as a message."""
    return qpu_pb2.Driver(
        id=row.id,
        name=row.name,
        qpu_id=row.qpu_id,
        kind=row.kind,
        language=row.language,
        status=qpu_pb2.Driver.STATUS_ONLINE
        if row.status == "online"
        else qpu_pb2.Driver.STATUS_OFFLINE,
        enabled=row.enabled,
        host=row.host,
        version=row.version,
        last_seen_time=ts(row.last_seen),
        transport=row.transport,
        create_time=ts(row.created),
    )


def user(row: User) -> account_pb2.User:
    """A user as a message."""
    return account_pb2.User(
        id=row.id,
        email=row.email,
        name=row.name,
        qpu_seconds=row.qpu_seconds,
        is_superuser=row.is_superuser,
        create_time=ts(row.created),
        update_time=ts(row.updated),
    )


def api_token(row: ApiToken) -> account_pb2.ApiToken:
    """Token metadata (never the hash)."""
    return account_pb2.ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        expire_time=ts(row.expires_at),
        create_time=ts(row.created),
        prefix=row.prefix,
    )


def time_slot(row: TimeSlot, email: str = "") -> booking_pb2.TimeSlot:
    """A booking as a message."""
    return booking_pb2.TimeSlot(
        id=row.id,
        user_id=row.user_id,
        qpu_id=row.qpu_id or "",
        start_time=ts(row.start_time),
        end_time=ts(row.end_time),
        user_email=email,
        create_time=ts(row.created),
    )


def time_request(row: TimeRequest, email: str = "") -> booking_pb2.TimeRequest:
    """A time request as a message."""
    return booking_pb2.TimeRequest(
        id=row.id,
        user_id=row.user_id,
        seconds=row.seconds,
        state=_REQUEST_STATES[row.state],
        requested_reason=row.requested_reason,
        rejection_reason=row.rejection_reason,
        handled_by=row.handled_by,
        user_email=email,
        create_time=ts(row.created),
    )


def notification(view: NotificationView, *, show_targets: bool) -> notification_pb2.Notification:
    """A notification as a message; targets are shown to administrators only."""
    r = view.notification
    return notification_pb2.Notification(
        id=r.id,
        title=r.title,
        description=r.description,
        target_user_ids=list(view.targets) if show_targets else [],
        start_time=ts(r.start_time),
        end_time=ts(r.end_time),
        dismissed=view.dismissed,
        create_time=ts(r.created),
        update_time=ts(r.updated),
    )


def telemetry(row: TelemetryEvent) -> admin_service_pb2.TelemetryEvent:
    """A telemetry event as a message."""
    return admin_service_pb2.TelemetryEvent(
        id=row.id,
        driver_id=row.driver_id,
        qpu_id=row.qpu_id,
        type=row.type,
        payload_json=row.payload_json,
        event_time=ts(row.event_time),
    )
