"""The NNG drivers' message formats: JSON envelopes (current) and bare objects (legacy).

Pure functions: bytes in, plain data out. Every inbound message comes from an
unauthenticated socket, so anything unexpected raises :class:`Malformed` with a short
reason and is dropped by the caller; nothing here trusts sizes or types.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ENVELOPE = "envelope"
LEGACY = "legacy"
WIRES = (ENVELOPE, LEGACY)

JOB_DISPATCH = "JobDispatch"
JOB_RESULT = "JobResult"
CRYOSTAT_READING = "CryostatReading"
# Driver → server event types kept as telemetry (the 0.4 drivers' calibration events too).
TELEMETRY_TYPES = frozenset(
    {CRYOSTAT_READING, "CalibrationResult", "CalibrationProgress", "CalibrationQueued"}
)
_MAX_JOB_ID = 100
_MAX_ERROR_CHARS = 5000


class Malformed(ValueError):
    """An inbound message that cannot be used; the text says why."""


@dataclass(frozen=True)
class ResultMessage:
    """A JobResult: the result object, or the driver's failure message."""

    job_id: str
    result_json: str | None
    error: str | None


@dataclass(frozen=True)
class TelemetryMessage:
    """A telemetry event such as CryostatReading."""

    type: str
    payload_json: str
    at: datetime | None


Inbound = ResultMessage | TelemetryMessage


def event_id() -> str:
    """`evt_` + 24 hex characters, as the published drivers make them."""
    return "evt_" + secrets.token_hex(12)


def timestamp(at: datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def encode_dispatch(
    wire: str, driver_id: str, job_id: str, payload: dict[str, Any], at: datetime
) -> bytes:
    """The message that hands a job to a driver."""
    body = {"job_id": job_id, "payload": payload}
    if wire == LEGACY:
        return json.dumps(body).encode()
    envelope = {
        "id": event_id(),
        "driver": driver_id,
        "type": JOB_DISPATCH,
        "ts": timestamp(at),
        "payload": body,
    }
    return json.dumps(envelope).encode()


def decode(data: bytes) -> Inbound:
    """Parses one inbound message of either format.

    An object with a `type` is an envelope; one with `job_id` and `results` but no `type`
    is a legacy result. The envelope's `driver` field is ignored: the socket a message
    arrived on identifies its driver.
    """
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not UTF-8 JSON") from exc
    if not isinstance(message, dict):
        raise Malformed("not a JSON object")
    if "type" not in message:
        if "job_id" in message and "results" in message:
            return _result(message)
        raise Malformed("neither an envelope nor a legacy result")
    kind = message["type"]
    payload = message.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise Malformed("payload is not an object")
    if kind == JOB_RESULT:
        return _result(payload)
    if kind in TELEMETRY_TYPES:
        return _telemetry(str(kind), payload, message.get("ts"))
    raise Malformed(f"unknown event type {str(kind)[:40]!r}")


def _result(payload: dict[str, Any]) -> ResultMessage:
    job_id = payload.get("job_id")
    if not isinstance(job_id, str) or not job_id or len(job_id) > _MAX_JOB_ID:
        raise Malformed("JobResult without a usable job_id")
    results = payload.get("results")
    if isinstance(results, str):  # some drivers send the result dict as a JSON string
        try:
            results = json.loads(results)
        except ValueError as exc:
            raise Malformed("JobResult results is not JSON") from exc
    if not isinstance(results, dict):
        raise Malformed("JobResult results is not an object")
    if "error" in results:
        error = str(results["error"] or "The driver reported a failure without a message.")
        return ResultMessage(job_id, None, error[:_MAX_ERROR_CHARS])
    return ResultMessage(job_id, json.dumps(results), None)


def _telemetry(kind: str, payload: dict[str, Any], ts: object) -> TelemetryMessage:
    if kind == CRYOSTAT_READING:
        readings = payload.get("readings")
        if not isinstance(readings, dict) or not readings:
            raise Malformed("CryostatReading without readings")
    return TelemetryMessage(kind, json.dumps(payload), _parse_ts(ts))


def _parse_ts(ts: object) -> datetime | None:
    if not isinstance(ts, str) or len(ts) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
