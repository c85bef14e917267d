"""SQLModel tables. Every index comment names the query that needs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from qpi.server.store.types import UtcDateTime, new_id, utcnow


def _ts(nullable: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable)


class UserRow(SQLModel, table=True):
    """A person; superusers (administrators) are users with `is_superuser`."""

    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    email: str = Field(max_length=320, unique=True)  # login lookup
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=200)
    is_superuser: bool = Field(default=False)
    qpu_seconds: float = Field(default=0.0)
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ApiTokenRow(SQLModel, table=True):
    """An API token; only the SHA-256 hex of the raw value is stored."""

    __tablename__ = "api_tokens"
    # listings, newest first: one owner's, everyone's
    __table_args__ = (
        Index("ix_api_tokens_user_created_id", "user_id", "created", "id"),
        Index("ix_api_tokens_created_id", "created", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")  # list own
    token_hash: str = Field(max_length=64, unique=True)  # authentication lookup
    prefix: str = Field(default="", max_length=12)
    name: str = Field(default="", max_length=200)
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class QpuRow(SQLModel, table=True):
    """A registered QPU."""

    __tablename__ = "qpus"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    name: str = Field(max_length=200, unique=True)  # get-by-name
    enabled: bool = Field(default=True)
    status: str = Field(default="offline", max_length=20)
    num_qubits: int = Field(default=0)
    coupling_map_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    native_gates_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    # Meas levels and calibration data from the executing driver's hello (JSON object).
    capabilities_json: str = Field(
        default="{}", sa_column=Column(Text, nullable=False, server_default="{}")
    )
    executor: str = Field(default="", max_length=100)
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated: datetime = Field(default_factory=utcnow, sa_column=_ts())


class DriverRow(SQLModel, table=True):
    """A driver registration; its access token is stored as SHA-256 hex."""

    __tablename__ = "drivers"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    name: str = Field(max_length=200)
    qpu_id: str = Field(foreign_key="qpus.id", index=True, ondelete="CASCADE")  # per-QPU list
    kind: str = Field(default="mock", max_length=40)
    language: str = Field(default="python", max_length=20)
    token_hash: str = Field(max_length=64, unique=True)  # stream authentication
    enabled: bool = Field(default=True)
    status: str = Field(default="offline", max_length=20)
    host: str = Field(default="", max_length=255)
    version: str = Field(default="", max_length=100)
    transport: str = Field(default="", max_length=10)
    last_seen: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NngPortRow(SQLModel, table=True):
    """One NNG compatibility listener port, allocated to a driver until it is deleted.

    The port is the primary key, so two allocations (other replicas, concurrent connects)
    can never both commit the same port: the loser's transaction fails and it retries.
    """

    __tablename__ = "nng_ports"
    # one port per role and driver; also the per-driver lookup
    __table_args__ = (UniqueConstraint("driver_id", "role", name="uq_nng_ports_driver_role"),)
    port: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    driver_id: str = Field(foreign_key="drivers.id", ondelete="CASCADE", max_length=15)
    role: str = Field(max_length=3)  # "in": server PUSH (jobs), "out": server PULL (results)
    wire: str = Field(default="envelope", max_length=10)  # message format: envelope | legacy
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ReplicaRow(SQLModel, table=True):
    """One `qpi serve` process sharing the database; dead once `expires_at` has passed."""

    __tablename__ = "replicas"
    id: str = Field(primary_key=True, max_length=32)
    host: str = Field(default="", max_length=255)
    grpc_port: int = Field(default=0)
    http_port: int = Field(default=0)
    version: str = Field(default="", max_length=50)
    started_at: datetime = Field(sa_column=_ts())
    heartbeat_at: datetime = Field(sa_column=_ts())
    # dead-replica sweeps
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    # Set while this replica holds the leadership lock (for operators; the lock decides).
    leader_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DriverSessionRow(SQLModel, table=True):
    """The live stream of a driver and the replica holding it (one per driver)."""

    __tablename__ = "driver_sessions"
    driver_id: str = Field(
        foreign_key="drivers.id", primary_key=True, ondelete="CASCADE", max_length=15
    )
    session_id: str = Field(max_length=32)
    # a replica's sessions (its cleanup); a QPU's sessions (its status)
    replica_id: str = Field(
        foreign_key="replicas.id", index=True, ondelete="CASCADE", max_length=32
    )
    qpu_id: str = Field(foreign_key="qpus.id", index=True, ondelete="CASCADE", max_length=15)
    executes: bool = Field(default=True)
    executor: str = Field(default="", max_length=100)
    host: str = Field(default="", max_length=255)
    started_at: datetime = Field(sa_column=_ts())


class TimeSlotRow(SQLModel, table=True):
    """A booking; `qpu_id` NULL books every QPU."""

    __tablename__ = "time_slots"
    __table_args__ = (
        # active-booking and overlap queries scan by time range
        Index("ix_time_slots_range", "start_time", "end_time"),
        # dispatch reads only current and future slots (end after now)
        Index("ix_time_slots_end", "end_time"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    qpu_id: str | None = Field(default=None, foreign_key="qpus.id", ondelete="CASCADE")
    start_time: datetime = Field(sa_column=_ts())
    end_time: datetime = Field(sa_column=_ts())
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


# Job listing sorts (field → PostgreSQL ordering of the indexed column): the index holds
# (field, created, id), the listing's ties; names sort by code point, unset values (finish
# times, deleted QPUs) first (see qpi.server.store.listing).
JOB_SORT_INDEXES = {
    "updated": "",
    "finished_at": "NULLS FIRST",
    "charged_seconds": "",
    "qpu_id": "NULLS FIRST",
    "qpu_name": 'COLLATE "C"',
}


def _open_jobs_index(name: str, state: str, *columns: str) -> Index:
    """An index of the jobs in one open state: as small as the queue (or the running set)
    however long the history grows. A young PostgreSQL table (not analysed yet) was seen
    to answer the hot path's queries through a QPU's or a user's history index, filtering
    every past job on each submit; a partial index matching the query is picked either
    way (the queries write the state as a literal, see store/jobs.py `_in_state`)."""
    where = text(f"state = '{state}'")
    return Index(name, *columns, postgresql_where=where, sqlite_where=where)


def _sort_indexes() -> list[Index]:
    out = []
    for name, pg_ops in JOB_SORT_INDEXES.items():
        ops: dict[str, Any] = {"postgresql_ops": {name: pg_ops}} if pg_ops else {}
        out.append(Index(f"ix_jobs_{name}_created_id", name, "created", "id", **ops))
        owner = Index(f"ix_jobs_user_{name}_created_id", "user_id", name, "created", "id", **ops)
        out.append(owner)
    out.append(Index("ix_jobs_user_id_id", "user_id", "id"))
    return out


class JobRow(SQLModel, table=True):
    """A quantum job with its current lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        # dispatcher: oldest pending job per QPU, (created, id) order without a sort;
        # capped queue lengths; recovery: running jobs by lease expiry
        Index("ix_jobs_qpu_state_created_id", "qpu_id", "state", "created", "id"),
        # the queue alone: a QPU's oldest pending job, and whether it has one (dispatch,
        # a submit's direct lease); what a user's running jobs reserve (submits, claims)
        _open_jobs_index("ix_jobs_pending_qpu_created_id", "pending", "qpu_id", "created", "id"),
        _open_jobs_index("ix_jobs_running_user", "running", "user_id", "estimated_seconds"),
        Index("ix_jobs_state_lease", "state", "lease_expires_at"),
        # owner listings, newest first; administrators' listings of everyone's jobs (the
        # id tie-breaker of listings is in the index, so a page is one index range)
        Index("ix_jobs_user_created_id", "user_id", "created", "id"),
        Index("ix_jobs_created_id", "created", "id"),
        # listings by status (administrators'; owners'); the owner's prefix also serves the
        # per-user pending limit at submit and the reservations of a user's running jobs
        Index("ix_jobs_state_created_id", "state", "created", "id"),
        Index("ix_jobs_user_state_created_id", "user_id", "state", "created", "id"),
        # a booker's oldest pending job on a QPU
        Index("ix_jobs_user_state_qpu_created", "user_id", "state", "qpu_id", "created", "id"),
        # every other sort of a listing, everyone's and an owner's: one index range each
        *_sort_indexes(),
        # idempotent submits
        UniqueConstraint("user_id", "request_id", name="uq_jobs_user_request"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE")
    # NULL once the QPU is deleted: job history outlives the QPU, which `qpu_name` names.
    qpu_id: str | None = Field(default=None, foreign_key="qpus.id", ondelete="SET NULL")
    qpu_name: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    request_id: str | None = Field(default=None, max_length=100)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=12)
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempt: int = Field(default=0)
    lease_driver_id: str | None = Field(default=None, max_length=15, index=True)
    # The stream holding the lease: a replaced stream of the same driver must not requeue
    # leases a newer stream resumed.
    lease_session: str | None = Field(default=None, max_length=32, index=True)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    charged_seconds: float = Field(default=0.0)
    # Expected QPU seconds, reserved from the owner's balance while the job runs.
    estimated_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated: datetime = Field(default_factory=utcnow, sa_column=_ts())
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class TimeRequestRow(SQLModel, table=True):
    """A request for more QPU seconds."""

    __tablename__ = "qpu_time_requests"
    # listings, newest first: one owner's, everyone's
    __table_args__ = (
        Index("ix_qpu_time_requests_user_created_id", "user_id", "created", "id"),
        Index("ix_qpu_time_requests_created_id", "created", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    seconds: float
    state: str = Field(default="pending", max_length=12)
    requested_reason: str = Field(default="", max_length=5000)
    rejection_reason: str = Field(default="", max_length=5000)
    handled_by: str = Field(default="", max_length=15)
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NotificationRow(SQLModel, table=True):
    """An announcement; targets and dismissals are per-user rows (set semantics)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_created_id", "created", "id"),)  # newest first
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    title: str = Field(max_length=500)
    description: str = Field(default="", max_length=5000)
    start_time: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    end_time: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NotificationTargetRow(SQLModel, table=True):
    """One user a notification is addressed to."""

    __tablename__ = "notification_targets"
    notification_id: str = Field(
        foreign_key="notifications.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")


class NotificationDismissalRow(SQLModel, table=True):
    """One user's dismissal of a notification."""

    __tablename__ = "notification_dismissals"
    notification_id: str = Field(
        foreign_key="notifications.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")


class TelemetryEventRow(SQLModel, table=True):
    """A telemetry event reported by a driver."""

    __tablename__ = "telemetry_events"
    __table_args__ = (
        Index("ix_telemetry_type_time", "type", "event_time"),  # list by type
        # newest-first pages (all, and one driver's) with the listings' id tie-breaker
        Index("ix_telemetry_time_id", "event_time", "id"),
        Index("ix_telemetry_driver_time_id", "driver_id", "event_time", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    driver_id: str = Field(foreign_key="drivers.id", index=True, ondelete="CASCADE")
    qpu_id: str = Field(foreign_key="qpus.id", ondelete="CASCADE")
    type: str = Field(max_length=100)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    event_time: datetime = Field(sa_column=_ts())
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ServerSecretRow(SQLModel, table=True):
    """Server-wide secrets shared by all replicas (e.g. the session signing key)."""

    __tablename__ = "server_secrets"
    name: str = Field(primary_key=True, max_length=50)
    value: str = Field(max_length=500)


class OAuth2IdentityRow(SQLModel, table=True):
    """Links an OAuth2 provider's subject to the user it signs in."""

    __tablename__ = "oauth2_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)  # login lookup
    id: str = Field(default_factory=new_id, primary_key=True, max_length=15)
    provider: str = Field(max_length=32)
    subject: str = Field(max_length=255)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")  # user delete
    email: str = Field(default="", max_length=320)
    created: datetime = Field(default_factory=utcnow, sa_column=_ts())


class OAuth2LoginCodeRow(SQLModel, table=True):
    """A one-time code the OAuth2 callback hands the browser; stored as SHA-256 hex."""

    __tablename__ = "oauth2_login_codes"
    code_hash: str = Field(primary_key=True, max_length=64)  # exchange lookup
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE")
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


# The tables as SQLAlchemy Core objects, for the prebuilt statements of the hot path.
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
USERS: Table = UserRow.__table__  # type: ignore[attr-defined]
QPUS: Table = QpuRow.__table__  # type: ignore[attr-defined]
TIME_SLOTS: Table = TimeSlotRow.__table__  # type: ignore[attr-defined]
REPLICAS: Table = ReplicaRow.__table__  # type: ignore[attr-defined]
DRIVER_SESSIONS: Table = DriverSessionRow.__table__  # type: ignore[attr-defined]
API_TOKENS: Table = ApiTokenRow.__table__  # type: ignore[attr-defined]
