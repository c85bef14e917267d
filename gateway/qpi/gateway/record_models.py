"""Response models of the PocketBase-style collections: one record and one page per kind.

The collection routes are registered per collection (see :mod:`qpi.gateway.routes.collections`)
so each one documents and returns its own record schema.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from qpi.gateway.models import (
    DriverStatus,
    JobStatus,
    PayloadOut,
    PbDate,
    QpuCapabilitiesOut,
    QpuStatus,
)


class CollectionRecord(BaseModel):
    """Fields every record carries; ``expand`` only when the request asked for it."""

    collectionId: str  # noqa: N815 - PocketBase's keys
    collectionName: str  # noqa: N815
    id: str
    expand: dict[str, Any] | None = Field(
        default=None,
        description="Requested relations: field → related record (or list of records).",
    )


class UserRecord(CollectionRecord):
    """A user; other users' e-mails are never shown."""

    email: str
    name: str
    qpu_seconds: float
    verified: bool
    emailVisibility: bool  # noqa: N815
    is_superuser: bool
    created: PbDate
    updated: PbDate


class SessionOut(BaseModel):
    """A session: auth-with-password, auth-refresh and the OAuth2 exchange return it."""

    token: str = Field(description="Session token; send it as `Authorization`.")
    record: UserRecord


class QpuRecord(CollectionRecord):
    """A QPU; ``status`` is derived by the server, ``executor`` reported by its driver."""

    name: str
    status: QpuStatus
    num_qubits: int
    enabled: bool
    executor: str = Field(description="Executor kind of the connected driver; empty if unknown.")
    native_gates: list[str] = Field(description="Native gate names; empty when unknown.")
    coupling_map: list[list[int]] = Field(
        description="Directed coupled qubit pairs; empty means all-to-all."
    )
    capabilities: QpuCapabilitiesOut
    queue_length: int = Field(description="Jobs pending or running on this QPU.")
    created: PbDate
    updated: PbDate


class TimeSlotRecord(CollectionRecord):
    """A booking; ``qpu`` empty books every QPU."""

    start_time: PbDate
    end_time: PbDate
    booked_by: str
    qpu: str
    created: PbDate


class JobRecord(CollectionRecord):
    """A job as a collection record (every field present)."""

    user_id: str
    qpu_target: str
    qpu_name: str
    payload: PayloadOut
    status: JobStatus
    finished_at: PbDate
    duration: float
    results: dict[str, Any] | None
    created: PbDate
    updated: PbDate
    user_email: str = Field(description="Owner's e-mail, for display.")
    attempt: int = Field(description="How many times the job was leased to a driver.")
    started_at: PbDate = Field(description="When the current lease started; empty before.")


class TimeRequestRecord(CollectionRecord):
    """A request for QPU seconds."""

    user: str
    seconds: float
    status: Literal["pending", "approved", "rejected"]
    requested_reason: str
    rejection_reason: str
    handled_by: str
    created: PbDate


class NotificationRecord(CollectionRecord):
    """An announcement; empty ``target_users`` addresses everyone."""

    title: str
    description: str
    target_users: list[str]
    dismissed: bool = Field(description="Whether the caller dismissed it.")
    start_time: PbDate
    end_time: PbDate
    created: PbDate
    updated: PbDate


class ApiTokenRecord(CollectionRecord):
    """API-token metadata; ``token`` (the raw value) only in a create response."""

    name: str
    user: str
    expires_at: PbDate
    created: PbDate
    token: str | None = Field(default=None, description="Shown once, when created.")


class DriverRecord(CollectionRecord):
    """A driver registration; ``token`` only in a create response."""

    name: str
    qpu: str
    kind: str
    language: str
    status: DriverStatus
    enabled: bool
    host: str
    version: str
    transport: str
    last_seen: PbDate
    created: PbDate
    token: str | None = Field(default=None, description="Shown once, when created.")


class TelemetryRecord(CollectionRecord):
    """A telemetry event a driver reported."""

    source: str
    driver: str
    qpu: str
    type: str
    payload: Any = Field(description="The event's JSON payload.")
    ts: PbDate


R = TypeVar("R", bound=CollectionRecord)


class RecordPage(BaseModel, Generic[R]):
    """One page of a collection list."""

    page: int
    perPage: int  # noqa: N815 - PocketBase's keys
    totalItems: int = Field(  # noqa: N815
        description="Matches, counted up to 10,000 (2,000 when no one index holds every "
        "field the filter reads; that cap beyond); -1 with skipTotal."
    )
    totalItemsCapped: bool = Field(  # noqa: N815
        description="True when more records match than were counted: totalItems (and "
        "totalPages) are then lower bounds, the count having stopped at its cap. False "
        "with skipTotal."
    )
    totalPages: int  # noqa: N815
    items: list[R]


RECORD_MODELS: dict[str, type[CollectionRecord]] = {
    "users": UserRecord,
    "qpus": QpuRecord,
    "time_slots": TimeSlotRecord,
    "jobs": JobRecord,
    "time_requests": TimeRequestRecord,
    "notifications": NotificationRecord,
    "api_tokens": ApiTokenRecord,
    "drivers": DriverRecord,
    "events": TelemetryRecord,
}
"""Record model per collection kind (see ``Collection.kind``)."""
