"""Pydantic models of the custom routes: request bodies (validated) and responses (returned).

Every route returns one of the response models here, so the OpenAPI document (from which
the dashboard's TypeScript client is generated) describes exactly what leaves the gateway.
Collection records live in :mod:`qpi.gateway.record_models`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from qpi.gateway.timefmt import OPTIONAL_DATE_PATTERN, DateFormatError, parse_datetime

INT32_MAX = 2**31 - 1

_REQUEST = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


def _integral(value: object) -> object:
    """JSON Schema's ``integer`` includes ``5.0``; accept it as 5 (strict mode refuses it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int32 = Annotated[int, Field(ge=0, le=INT32_MAX), BeforeValidator(_integral)]
"""A non-negative int32 as JSON Schema defines integers: ``5`` and ``5.0`` are accepted,
``"5"`` and ``5.5`` are not. (Constraints live inside the type so that ``Int32 | None``
still documents them as ``minimum``/``maximum``.)"""


NUL_FREE = r"^[^\x00]*$"
"""No QPI text may contain NUL (PostgreSQL cannot store it; the server refuses it)."""

Text = Annotated[str, Field(pattern=NUL_FREE)]
"""A string without NUL characters."""

_PY_SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAMED = rf"^[^\x00]*[^\x00{_PY_SPACE}][^\x00]*$"
"""NUL-free with at least one character that is not whitespace: the server strips names
with Python's ``str.strip``, so the class lists exactly the characters that removes."""

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAMED)]
"""A display name as the server accepts it (1-200 characters, not only whitespace)."""


def _date_text(value: object) -> object:
    """Check a date string up front so a bad one is a field error naming the key."""
    if isinstance(value, str) and value:
        try:
            parse_datetime(value)
        except DateFormatError as exc:
            raise ValueError(f"not a date: {exc}") from None
    return value


DATE_INPUT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}],
    "description": 'RFC 3339 date-time; "" means none. PocketBase dates '
    '("2026-01-02 03:04:05.678Z") are accepted too.',
}

DateInput = Annotated[str, BeforeValidator(_date_text), WithJsonSchema(DATE_INPUT_SCHEMA)]
"""A date a client sends: RFC 3339, PocketBase style, or ``""`` for none."""

PbDate = Annotated[
    str,
    Field(
        pattern=OPTIONAL_DATE_PATTERN,
        description='PocketBase date "YYYY-MM-DD HH:MM:SS.mmmZ" (UTC); "" when unset.',
    ),
]
"""A date the gateway returns."""


# -- request bodies ---------------------------------------------------------------------


class CircuitIn(BaseModel):
    """One circuit of a submitted job."""

    model_config = _REQUEST
    circuit: Text = Field(description="OpenQASM 2 or 3 source.")
    parameter_values: list[list[float]] | None = Field(
        default=None, description="Parameter sets, one run per set."
    )
    shots: Int32 | None = None


class JobCreate(BaseModel):
    """Body of ``POST /api/jobs`` (§5.2)."""

    model_config = _REQUEST
    circuits: list[CircuitIn] = Field(min_length=1)
    shots: Int32 = Field(default=0, description="0 means 1024.")
    meas_level: Int32 = 2
    meas_return: Literal["single", "avg", ""] = "single"
    qpu_target: Text = Field(default="", description="QPU id or name; empty lets the server route.")
    acq_rotation: float | None = Field(
        default=None, description="IQ discrimination rotation in degrees (meas_level 2)."
    )
    acq_threshold: float | None = Field(
        default=None, description="IQ discrimination threshold after rotation (meas_level 2)."
    )


MAX_BATCH_JOBS = 1000


class JobBatchItem(JobCreate):
    """One job of ``POST /api/jobs/batch``."""

    request_id: Text = Field(
        default="",
        max_length=100,
        description="Idempotency key: a retried batch returns the job first created with it.",
    )


class JobBatchCreate(BaseModel):
    """Body of ``POST /api/jobs/batch``: submitted all or nothing."""

    model_config = _REQUEST
    jobs: list[JobBatchItem] = Field(min_length=1, max_length=MAX_BATCH_JOBS)


class QpuCreate(BaseModel):
    """Body of ``POST /api/op/qpus/create``."""

    model_config = _REQUEST
    name: Name
    num_qubits: Int32 | None = None
    enabled: bool = True
    executor_type: Text | None = Field(
        default=None,
        description="Kind of the first driver when it is a built-in executor (mock, "
        "qiskit_aer, quantify, qblox, presto); anything else means mock.",
    )


class QpuToggle(BaseModel):
    """Body of ``POST /api/op/qpu/toggle``."""

    model_config = _REQUEST
    id: Text = Field(min_length=1, description="QPU id or name.")
    enabled: bool


class DriverCreate(BaseModel):
    """Body of ``POST /api/op/drivers/create``."""

    model_config = _REQUEST
    name: Text = Field(min_length=1, max_length=255)
    qpu: Text = Field(min_length=1, description="QPU id or name.")
    kind: Text = Field(
        min_length=1,
        description="mock, qiskit_aer, quantify, qblox, presto, bluefors_gen1 or custom.",
    )
    language: Text = Field(default="python", description="python, typescript or go.")
    events: list[Text] | None = Field(default=None, description="Accepted and ignored.")
    enabled: bool = True


class DriverToggle(BaseModel):
    """Body of ``POST /api/op/drivers/toggle``."""

    model_config = _REQUEST
    id: Text = Field(min_length=1)
    enabled: bool


class TokenCreate(BaseModel):
    """Body of ``POST /api/tokens``."""

    model_config = _REQUEST
    name: Text = ""
    expires_at: DateInput | None = Field(
        default=None, description="Expiry, in the future; empty or absent never expires."
    )


class TokenUpdate(BaseModel):
    """Body of ``PATCH /api/tokens/{id}``; only provided keys change."""

    model_config = _REQUEST
    name: Text | None = None
    expires_at: DateInput | None = Field(
        default=None, description='New expiry (may be in the past); "" removes the expiry.'
    )


class UserAdminUpdate(BaseModel):
    """Body of ``PATCH /api/admin/users/{id}``."""

    model_config = _REQUEST
    qpu_seconds: float = Field(ge=0, le=1e15)


class PasswordAuth(BaseModel):
    """Body of ``auth-with-password``."""

    model_config = _REQUEST
    identity: Text
    password: Text


class OAuth2Exchange(BaseModel):
    """Body of ``POST /api/oauth2/exchange``."""

    model_config = _REQUEST
    code: Text = Field(min_length=1, max_length=256, description="The one-time `oauth2_code`.")


# -- responses --------------------------------------------------------------------------


class CircuitOut(BaseModel):
    """One stored circuit; ``parameter_values`` and ``shots`` only when set."""

    circuit: str
    parameter_values: list[list[float]] | None = None
    shots: int | None = None


class PayloadOut(BaseModel):
    """The stored, normalised submit request of a job."""

    circuits: list[CircuitOut]
    shots: int
    meas_level: int
    meas_return: Literal["single", "avg"]
    qpu_target: str | None = Field(default=None, description="Only when the job has a QPU.")
    acq_rotation: float | None = Field(default=None, description="Only when submitted.")
    acq_threshold: float | None = Field(default=None, description="Only when submitted.")


JobStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


class JobBatchOut(BaseModel):
    """Response of ``POST /api/jobs/batch``: the jobs in the order of the request."""

    jobs: list[JobOut]


class JobOut(BaseModel):
    """Job object (§4.4); ``finished_at``, ``duration`` and ``results`` only when set."""

    id: str
    user_id: str
    qpu_target: str
    payload: PayloadOut
    status: JobStatus
    finished_at: PbDate | None = None
    duration: float | None = None
    results: dict[str, Any] | None = Field(
        default=None, description='Real results once finished; {"error": ...} for failed jobs.'
    )
    created: PbDate
    updated: PbDate


QpuStatus = Literal["online", "offline", "maintenance"]


class InstructionPropertiesOut(BaseModel):
    """Calibration data of one instruction on specific qubits, where the executor knows it."""

    name: str
    qubits: list[int]
    duration_seconds: float | None = None
    error: float | None = None


class QpuCapabilitiesOut(BaseModel):
    """What the QPU's connected executor announced (empty until one connected)."""

    meas_levels: list[int] = Field(
        description="Measurement levels it returns (0 traces, 1 IQ, 2 counts); empty = unknown."
    )
    instructions: list[InstructionPropertiesOut]


class QpuOut(BaseModel):
    """QPU object (§4.4) with what its driver reported (executor, native gates)."""

    id: str
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


class QpuCreatedOut(BaseModel):
    """Response of ``POST /api/op/qpus/create``; ``access_token`` is shown only here."""

    id: str
    name: str
    status: QpuStatus
    enabled: bool
    num_qubits: int
    access_token: str
    ca_fingerprint: str
    driver_id: str
    driver_name: str
    driver_kind: str
    qpi_addr: str = Field(description="The address drivers should dial (this request's host).")
    driver_version: str
    snippets: dict[str, str] = Field(
        description="Copy-paste setup of the first driver: manual_cli (install and start) "
        "and systemd, as /api/op/drivers/create returns them."
    )


class QpuToggledOut(BaseModel):
    """Response of ``POST /api/op/qpu/toggle``."""

    id: str
    name: str
    enabled: bool
    status: QpuStatus


DriverStatus = Literal["online", "offline"]


class DriverCreatedOut(BaseModel):
    """Response of ``POST /api/op/drivers/create``; ``token`` is shown only here."""

    id: str
    name: str
    qpu: str
    kind: str
    language: str
    status: DriverStatus
    events: list[str]
    enabled: bool
    token: str
    ca_fingerprint: str
    qpi_addr: str
    driver_version: str
    snippets: dict[str, str] = Field(
        description="Copy-paste setup: manual_cli and systemd, or install and stub (custom)."
    )


class DriverToggledOut(BaseModel):
    """Response of ``POST /api/op/drivers/toggle``."""

    id: str
    name: str
    enabled: bool
    status: DriverStatus


class TokenOut(BaseModel):
    """API-token metadata; ``expires_at`` only when set."""

    id: str
    name: str
    expires_at: PbDate | None = None
    created: PbDate


class TokenCreatedOut(TokenOut):
    """Response of ``POST /api/tokens``: the metadata and the raw token, shown only here."""

    token: str


class StatusOut(BaseModel):
    """``{"status": ...}`` acknowledgements."""

    status: str


class VersionOut(BaseModel):
    """Server version."""

    version: str


class ServerInfoOut(BaseModel):
    """Public discovery facts for drivers and clients."""

    version: str = Field(description="Empty here; administrators read /api/op/version.")
    grpc_port: int
    grpc_tls: bool
    ca_fingerprint: str


class PasswordMethod(BaseModel):
    """Whether e-mail/password sign-in is offered."""

    enabled: bool
    identityFields: list[str]  # noqa: N815 - PocketBase's key


class OAuth2ProviderOut(BaseModel):
    """One OAuth2 sign-in button."""

    name: str
    displayName: str  # noqa: N815 - PocketBase's key
    authURL: str = Field(  # noqa: N815
        description="Server URL that starts the authorization-code + PKCE flow (open it "
        "in the browser; it redirects to the provider)."
    )


class OAuth2Methods(BaseModel):
    """OAuth2 providers configured on the server."""

    enabled: bool
    providers: list[OAuth2ProviderOut]


class AuthMethodsOut(BaseModel):
    """Response of ``auth-methods``."""

    password: PasswordMethod
    oauth2: OAuth2Methods


class ErrorDetail(BaseModel):
    """One field's problem."""

    code: str
    message: str


class ErrorOut(BaseModel):
    """The error envelope every failure uses."""

    data: dict[str, ErrorDetail] = Field(description="Per-field errors; often empty.")
    message: str
    status: int


PathId = Annotated[str, Path(pattern=NUL_FREE, max_length=512, description="Record id.")]
"""A path parameter naming a record (or a QPU by name)."""
