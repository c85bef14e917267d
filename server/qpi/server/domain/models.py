"""The records services hand out: immutable snapshots of what the store holds.

Repositories build them from rows; servicers convert them to protobuf; the event bus
carries them. Secrets (password and token hashes) never appear here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qpi.server.domain.policy import Booking


@dataclass(frozen=True)
class User:
    """A person; administrators have `is_superuser`."""

    id: str
    email: str
    name: str
    is_superuser: bool
    qpu_seconds: float
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class UserCredentials:
    """A user with the password hash that login and session checks need."""

    user: User
    password_hash: str


@dataclass(frozen=True)
class ApiToken:
    """API token metadata (the token's hash stays in the store)."""

    id: str
    user_id: str
    prefix: str
    name: str
    expires_at: datetime | None
    created: datetime


@dataclass(frozen=True)
class InstructionProperties:
    """Calibration data of one instruction on specific qubits (None when unknown)."""

    name: str
    qubits: tuple[int, ...]
    duration_seconds: float | None = None
    error: float | None = None


@dataclass(frozen=True)
class QpuCapabilities:
    """What the QPU's executing driver announced in its hello.

    Attributes:
        meas_levels: Measurement levels the executor returns; empty means unknown.
        instructions: Per-qubit / per-pair durations and errors the executor knows.
    """

    meas_levels: tuple[int, ...] = ()
    instructions: tuple[InstructionProperties, ...] = ()


@dataclass(frozen=True)
class ReportedDevice:
    """What an executing driver's hello says about the device it runs.

    Attributes:
        num_qubits: Qubits the executor offers; 0 when unknown.
        native_gates: Gate names it runs natively.
        coupling_map: Directed coupled pairs; empty means all-to-all (simulators).
        capabilities: Measurement levels and calibration data.
    """

    num_qubits: int = 0
    native_gates: tuple[str, ...] = ()
    coupling_map: tuple[tuple[int, int], ...] = ()
    capabilities: QpuCapabilities = field(default_factory=QpuCapabilities)


@dataclass(frozen=True)
class Qpu:
    """A registered QPU."""

    id: str
    name: str
    enabled: bool
    status: str
    num_qubits: int
    coupling_map: tuple[tuple[int, int], ...]
    native_gates: tuple[str, ...]
    executor: str
    created: datetime
    updated: datetime
    capabilities: QpuCapabilities = field(default_factory=QpuCapabilities)


@dataclass(frozen=True)
class Driver:
    """A driver registration (its token's hash stays in the store)."""

    id: str
    name: str
    qpu_id: str
    kind: str
    language: str
    enabled: bool
    status: str
    host: str
    version: str
    transport: str
    last_seen: datetime | None
    created: datetime


@dataclass(frozen=True)
class Job:
    """A quantum job. `payload_json` is the stored wire document, forwarded verbatim."""

    id: str
    user_id: str
    qpu_id: str
    request_id: str | None
    payload_json: str
    state: str
    result_json: str | None
    error: str | None
    attempt: int
    lease_driver_id: str | None
    charged_seconds: float
    estimated_seconds: float
    created: datetime
    updated: datetime
    started_at: datetime | None
    finished_at: datetime | None
    qpu_name: str = ""
    """The QPU's name when the job was submitted; `qpu_id` is empty once it is deleted."""


@dataclass(frozen=True)
class LeaseOffer:
    """A free execution slot of a connected driver, offered to one submission: when no job
    is queued ahead of it on that QPU and its owner's balance covers it, the job is stored
    already leased to that driver (one transaction instead of a submit and a dispatch
    round)."""

    qpu_id: str
    driver_id: str
    session_id: str
    expires: datetime
    """When the lease runs out without a heartbeat (as a dispatched lease would)."""


@dataclass(frozen=True)
class Claim:
    """A lease handed to a driver."""

    job_id: str
    attempt: int
    payload: dict[str, Any]
    user_id: str = ""
    """The job's owner."""


@dataclass(frozen=True)
class Revocation:
    """A running lease that must be cancelled on its driver."""

    job_id: str
    attempt: int
    driver_id: str


@dataclass(frozen=True)
class TimeSlot:
    """A booking; `qpu_id` None books every QPU."""

    id: str
    user_id: str
    qpu_id: str | None
    start_time: datetime
    end_time: datetime
    created: datetime

    def booking(self) -> Booking:
        """The slot as the scheduling and booking rules see it."""
        return Booking(self.id, self.user_id, self.qpu_id, self.start_time, self.end_time)


@dataclass(frozen=True)
class TimeRequest:
    """A request for more QPU seconds."""

    id: str
    user_id: str
    seconds: float
    state: str
    requested_reason: str
    rejection_reason: str
    handled_by: str
    created: datetime


@dataclass(frozen=True)
class Notification:
    """An announcement (targets and dismissals are kept beside it)."""

    id: str
    title: str
    description: str
    start_time: datetime | None
    end_time: datetime | None
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class NotificationView:
    """A notification with its targets, as seen by one user."""

    notification: Notification
    targets: tuple[str, ...]
    dismissed: bool


@dataclass(frozen=True)
class TelemetryEvent:
    """A telemetry event reported by a driver."""

    id: str
    driver_id: str
    qpu_id: str
    type: str
    payload_json: str
    event_time: datetime
    created: datetime
