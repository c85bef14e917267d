"""Pydantic models: request bodies (validated, unknown keys ignored) and documented responses.

Routes return ``JSONResponse`` objects built from :mod:`qpi.gateway.records`; the response
models here describe those shapes in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INT32_MAX = 2**31 - 1

_REQUEST = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)
_RESPONSE = ConfigDict(extra="allow")


class CircuitIn(BaseModel):
    """One circuit of a submitted job."""

    model_config = _REQUEST
    circuit: str = Field(description="OpenQASM 2 or 3 source.")
    parameter_values: list[list[float]] | None = Field(
        default=None, description="Parameter sets, one run per set."
    )
    shots: int | None = Field(default=None, ge=0, le=INT32_MAX)


class JobCreate(BaseModel):
    """Body of ``POST /api/jobs`` (§5.2)."""

    model_config = _REQUEST
    circuits: list[CircuitIn] = Field(min_length=1)
    shots: int = Field(default=0, ge=0, le=INT32_MAX, description="0 means 1024.")
    meas_level: int = Field(default=2, ge=0, le=INT32_MAX)
    meas_return: Literal["single", "avg", ""] = "single"
    qpu_target: str = Field(default="", description="QPU id or name; empty lets the server route.")


class QpuCreate(BaseModel):
    """Body of ``POST /api/op/qpus/create``."""

    model_config = _REQUEST
    name: str = Field(min_length=1)
    num_qubits: int | None = Field(default=None, ge=0, le=INT32_MAX)
    enabled: bool = True
    executor_type: str | None = Field(default=None, description="Accepted and ignored.")


class QpuToggle(BaseModel):
    """Body of ``POST /api/op/qpu/toggle``."""

    model_config = _REQUEST
    id: str = Field(min_length=1, description="QPU id or name.")
    enabled: bool


class DriverCreate(BaseModel):
    """Body of ``POST /api/op/drivers/create``."""

    model_config = _REQUEST
    name: str = Field(min_length=1, max_length=255)
    qpu: str = Field(min_length=1, description="QPU id or name.")
    kind: str = Field(
        min_length=1,
        description="mock, qiskit_aer, quantify, qblox, presto, bluefors_gen1 or custom.",
    )
    language: str = Field(default="python", description="python, typescript or go.")
    events: list[str] | None = Field(default=None, description="Accepted and ignored.")
    enabled: bool = True


class DriverToggle(BaseModel):
    """Body of ``POST /api/op/drivers/toggle``."""

    model_config = _REQUEST
    id: str = Field(min_length=1)
    enabled: bool


class DriverCreatedOut(BaseModel):
    """Response of ``POST /api/op/drivers/create``; ``token`` is shown only here."""

    model_config = _RESPONSE
    id: str
    name: str
    qpu: str
    kind: str
    language: str
    status: str
    enabled: bool
    token: str
    ca_fingerprint: str
    qpi_addr: str
    driver_version: str
    snippets: dict[str, str]


class DriverToggledOut(BaseModel):
    """Response of ``POST /api/op/drivers/toggle``."""

    model_config = _RESPONSE
    id: str
    name: str
    enabled: bool
    status: str


class TokenCreate(BaseModel):
    """Body of ``POST /api/tokens``."""

    model_config = _REQUEST
    name: str = ""
    expires_at: str | None = Field(default=None, description="Date; empty never expires.")


class TokenUpdate(BaseModel):
    """Body of ``PATCH /api/tokens/{id}``; only provided keys change."""

    model_config = _REQUEST
    name: str | None = None
    expires_at: str | None = None


class UserAdminUpdate(BaseModel):
    """Body of ``PATCH /api/admin/users/{id}``."""

    model_config = _REQUEST
    qpu_seconds: float = Field(ge=0)


class PasswordAuth(BaseModel):
    """Body of ``auth-with-password``."""

    model_config = _REQUEST
    identity: str
    password: str


class JobOut(BaseModel):
    """Job object (§4.4); ``finished_at``, ``duration`` and ``results`` only when set."""

    model_config = _RESPONSE
    id: str
    user_id: str
    qpu_target: str
    payload: dict[str, Any]
    status: Literal["pending", "running", "completed", "failed", "cancelled"]
    finished_at: str | None = None
    duration: float | None = None
    results: dict[str, Any] | None = None
    created: str
    updated: str


class QpuOut(BaseModel):
    """QPU object (§4.4) with what its driver reported (executor, native gates)."""

    model_config = _RESPONSE
    id: str
    name: str
    status: str
    num_qubits: int
    enabled: bool
    executor: str = Field(description="Executor kind of the connected driver; empty if unknown.")
    native_gates: list[str] = Field(description="Native gate names; empty when unknown.")
    queue_length: int = Field(description="Jobs pending or running on this QPU.")
    created: str
    updated: str


class QpuCreatedOut(BaseModel):
    """Response of ``POST /api/op/qpus/create``."""

    model_config = _RESPONSE
    id: str
    name: str
    status: str
    enabled: bool
    num_qubits: int
    access_token: str
    ca_fingerprint: str
    driver_id: str


class QpuToggledOut(BaseModel):
    """Response of ``POST /api/op/qpu/toggle``."""

    model_config = _RESPONSE
    id: str
    name: str
    enabled: bool
    status: str


class TokenOut(BaseModel):
    """API-token metadata; ``token`` (raw) only in the create response."""

    model_config = _RESPONSE
    id: str
    name: str
    expires_at: str | None = None
    created: str
    token: str | None = None


class StatusOut(BaseModel):
    """``{"status": ...}`` acknowledgements."""

    status: str


class VersionOut(BaseModel):
    """Server version."""

    version: str


class ServerInfoOut(BaseModel):
    """Public discovery facts for drivers and clients."""

    version: str
    grpc_port: int
    grpc_tls: bool
    ca_fingerprint: str


class RecordPage(BaseModel):
    """Collection list response."""

    page: int
    perPage: int  # noqa: N815 - PocketBase's key
    totalItems: int  # noqa: N815
    totalPages: int  # noqa: N815
    items: list[dict[str, Any]]


class AuthOut(BaseModel):
    """Response of ``auth-with-password`` and ``auth-refresh``."""

    token: str
    record: dict[str, Any]


class ErrorOut(BaseModel):
    """The error envelope."""

    data: dict[str, Any]
    message: str
    status: int


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": "Error envelope."}
    for code in (400, 401, 403, 404, 409, 413)
}
