"""Protobuf messages → the JSON objects the original REST API returned (§4.4, §2)."""

from __future__ import annotations

import json
import logging
from typing import Any

from qpi.gateway.timefmt import format_timestamp
from qpi.v1 import (
    account_pb2,
    admin_service_pb2,
    booking_pb2,
    job_pb2,
    notification_pb2,
    qpu_pb2,
)

logger = logging.getLogger(__name__)

DEFAULT_MEAS_LEVEL = 2


def enum_word(name: str, prefix: str) -> str:
    """Turn ``STATE_PENDING`` (prefix ``STATE_``) into ``pending``; unspecified → ``""``."""
    word = name.removeprefix(prefix).lower()
    return "" if word == "unspecified" else word


_JOB_STATUS: dict[int, str] = {
    int(value): enum_word(name, "STATE_") for name, value in job_pb2.Job.State.items()
}


def job_status(state: int) -> str:
    """REST status word of a :class:`job_pb2.Job.State` value."""
    found = _JOB_STATUS.get(state)
    if found is None:  # not a known value: Name raises, as before
        return enum_word(job_pb2.Job.State.Name(state), "STATE_")  # type: ignore[arg-type]
    return found


def qpu_status(status: int) -> str:
    """REST status word of a :class:`qpu_pb2.Qpu.Status` value."""
    return enum_word(qpu_pb2.Qpu.Status.Name(status), "STATUS_")  # type: ignore[arg-type]


def payload_object(payload: job_pb2.JobPayload, qpu_id: str) -> dict[str, Any]:
    """The stored, normalised submit request (§5.2) of a job."""
    circuits: list[dict[str, Any]] = []
    for circuit in payload.circuits:
        item: dict[str, Any] = {"circuit": circuit.qasm}
        if circuit.parameter_values:
            item["parameter_values"] = [list(ps.values) for ps in circuit.parameter_values]
        if circuit.shots:
            item["shots"] = circuit.shots
        circuits.append(item)
    result: dict[str, Any] = {
        "circuits": circuits,
        "shots": payload.shots or 1024,
        "meas_level": payload.meas_level if payload.HasField("meas_level") else DEFAULT_MEAS_LEVEL,
        "meas_return": "avg" if payload.meas_return == job_pb2.MEAS_RETURN_AVG else "single",
    }
    if qpu_id:
        result["qpu_target"] = qpu_id
    for name in ("acq_rotation", "acq_threshold"):
        if payload.HasField(name):
            result[name] = getattr(payload, name)
    return result


def job_results(job: job_pb2.Job) -> dict[str, Any] | None:
    """The job's real result dict; ``{"error": ...}`` for failed jobs; None when none yet."""
    if job.state == job_pb2.Job.STATE_FAILED:
        return {"error": job.error or "job failed"}
    if not job.result_json:
        return None
    try:
        value = json.loads(job.result_json)
    except ValueError:
        logger.warning("job %s has an unparsable result_json", job.id)
        return {"raw": job.result_json}
    return value if isinstance(value, dict) else {"circuit_results": value}


def job_object(job: job_pb2.Job) -> dict[str, Any]:
    """Job as returned by ``/api/jobs*``: empty ``finished_at``/``duration``/``results`` omitted."""
    obj: dict[str, Any] = {
        "id": job.id,
        "user_id": job.user_id,
        "qpu_target": job.qpu_id,
        "payload": payload_object(job.payload, job.qpu_id),
        "status": job_status(job.state),
    }
    finished = format_timestamp(job.finish_time if job.HasField("finish_time") else None)
    if finished:
        obj["finished_at"] = finished
    if job.charged_seconds:
        obj["duration"] = job.charged_seconds
    results = job_results(job)
    if results is not None:
        obj["results"] = results
    obj["created"] = format_timestamp(job.create_time)
    obj["updated"] = format_timestamp(job.update_time)
    return obj


def job_record(job: job_pb2.Job) -> dict[str, Any]:
    """Job as a ``quantum_jobs`` collection record (every field present, with display names
    and the lease's attempt count and start)."""
    obj = job_object(job)
    obj.setdefault("finished_at", "")
    obj.setdefault("duration", 0)
    obj.setdefault("results", None)
    obj["qpu_name"] = job.qpu_name
    obj["user_email"] = job.user_email
    # Lease facts for the dashboard's job details.
    obj["attempt"] = int(job.attempt)
    obj["started_at"] = format_timestamp(job.start_time if job.HasField("start_time") else None)
    return obj


def qpu_object(qpu: qpu_pb2.Qpu) -> dict[str, Any]:
    """QPU as returned by ``/api/qpus*`` and the ``qpus`` collection."""
    return {
        "id": qpu.id,
        "name": qpu.name,
        "status": qpu_status(qpu.status),
        "num_qubits": int(qpu.num_qubits),
        "enabled": qpu.enabled,
        "executor": qpu.executor,
        "native_gates": list(qpu.native_gates),
        "coupling_map": [[e.source, e.target] for e in qpu.coupling_map],
        "capabilities": capabilities_object(qpu.capabilities),
        "queue_length": int(qpu.queue_length),
        "created": format_timestamp(qpu.create_time),
        "updated": format_timestamp(qpu.update_time),
    }


def capabilities_object(caps: qpu_pb2.QpuCapabilities) -> dict[str, Any]:
    """What the QPU's executor announced; unknown durations and errors are left out."""
    instructions: list[dict[str, Any]] = []
    for entry in caps.instructions:
        item: dict[str, Any] = {"name": entry.name, "qubits": list(entry.qubits)}
        if entry.HasField("duration_seconds"):
            item["duration_seconds"] = entry.duration_seconds
        if entry.HasField("error"):
            item["error"] = entry.error
        instructions.append(item)
    return {"meas_levels": list(caps.meas_levels), "instructions": instructions}


def token_object(token: account_pb2.ApiToken) -> dict[str, Any]:
    """API-token metadata for ``/api/tokens*`` (never the token or its hash)."""
    obj: dict[str, Any] = {"id": token.id, "name": token.name}
    expires = format_timestamp(token.expire_time if token.HasField("expire_time") else None)
    if expires:
        obj["expires_at"] = expires
    obj["created"] = format_timestamp(token.create_time)
    return obj


def token_record(token: account_pb2.ApiToken) -> dict[str, Any]:
    """API token as an ``api_tokens`` collection record (never the hash)."""
    return {
        "id": token.id,
        "name": token.name,
        "user": token.user_id,
        "expires_at": format_timestamp(
            token.expire_time if token.HasField("expire_time") else None
        ),
        "created": format_timestamp(token.create_time),
    }


def user_record(user: account_pb2.User) -> dict[str, Any]:
    """User as a ``users`` collection record."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "qpu_seconds": user.qpu_seconds,
        "verified": True,
        "emailVisibility": False,
        "is_superuser": user.is_superuser,
        "created": format_timestamp(user.create_time),
        "updated": format_timestamp(user.update_time),
    }


def session_object(collection: str, token: str, user: account_pb2.User) -> dict[str, Any]:
    """``{token, record}``: what auth-with-password, auth-refresh and the OAuth2 exchange return."""
    record = {"collectionId": collection, "collectionName": collection, **user_record(user)}
    return {"token": token, "record": record}


def time_slot_record(slot: booking_pb2.TimeSlot) -> dict[str, Any]:
    """Booking as a ``time_slots`` collection record (``qpu`` empty = all QPUs)."""
    return {
        "id": slot.id,
        "start_time": format_timestamp(slot.start_time),
        "end_time": format_timestamp(slot.end_time),
        "booked_by": slot.user_id,
        "qpu": slot.qpu_id,
        "created": format_timestamp(slot.create_time),
    }


def time_request_record(req: booking_pb2.TimeRequest) -> dict[str, Any]:
    """QPU-time request as a ``qpu_time_requests`` collection record."""
    return {
        "id": req.id,
        "user": req.user_id,
        "seconds": req.seconds,
        "status": enum_word(booking_pb2.TimeRequest.State.Name(req.state), "STATE_"),
        "requested_reason": req.requested_reason,
        "rejection_reason": req.rejection_reason,
        "handled_by": req.handled_by,
        "created": format_timestamp(req.create_time),
    }


def notification_record(note: notification_pb2.Notification) -> dict[str, Any]:
    """Notification as a ``notifications`` record; who dismissed it is never exposed, only
    whether the caller did (``dismissed``: administrators list every notification)."""
    return {
        "id": note.id,
        "title": note.title,
        "description": note.description,
        "target_users": list(note.target_user_ids),
        "dismissed": note.dismissed,
        "start_time": format_timestamp(note.start_time if note.HasField("start_time") else None),
        "end_time": format_timestamp(note.end_time if note.HasField("end_time") else None),
        "created": format_timestamp(note.create_time),
        "updated": format_timestamp(note.update_time),
    }


def driver_status(status: int) -> str:
    """``STATUS_ONLINE`` → ``online``."""
    return enum_word(qpu_pb2.Driver.Status.Name(status), "STATUS_")  # type: ignore[arg-type]


def driver_record(driver: qpu_pb2.Driver) -> dict[str, Any]:
    """Driver as a ``drivers`` collection record (never its token or hash)."""
    return {
        "id": driver.id,
        "name": driver.name,
        "qpu": driver.qpu_id,
        "kind": driver.kind,
        "language": driver.language,
        "status": driver_status(driver.status),
        "enabled": driver.enabled,
        "host": driver.host,
        "version": driver.version,
        "transport": driver.transport,
        "last_seen": format_timestamp(
            driver.last_seen_time if driver.HasField("last_seen_time") else None
        ),
        "created": format_timestamp(driver.create_time),
    }


def telemetry_record(event: admin_service_pb2.TelemetryEvent) -> dict[str, Any]:
    """Telemetry event as an ``events`` collection record."""
    try:
        payload: Any = json.loads(event.payload_json) if event.payload_json else None
    except ValueError:
        payload = event.payload_json
    ts = format_timestamp(event.event_time if event.HasField("event_time") else None)
    return {
        "id": event.id,
        "source": event.driver_id,
        "driver": event.driver_id,
        "qpu": event.qpu_id,
        "type": event.type,
        "payload": payload,
        "ts": ts,
    }
