"""Python SDK for QPI: a gRPC client with live job streams and a Qiskit backend.

Example:
    >>> from qpi.sdk import QPIClient
    >>> with QPIClient("grpc://127.0.0.1:50051", api_token="qpi_...") as client:
    ...     job = client.submit_job(["OPENQASM 2.0; ..."], qpu_target="qpu-1")
    ...     print(client.wait(job.id).counts)
"""

from qpi.sdk.client import QPIClient
from qpi.sdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InsufficientQpuSecondsError,
    InternalError,
    InvalidArgumentError,
    InvalidQasmError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QPIError,
    QpuNotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)
from qpi.sdk.models import (
    ApiToken,
    Driver,
    Job,
    Notification,
    Qpu,
    TimeRequest,
    TimeSlot,
    User,
)
from qpi.sdk.records import (
    CreatedApiToken,
    CreatedDriver,
    CreatedQpu,
    Event,
    LoginSession,
    ServerInfo,
)

__all__ = [
    "AlreadyExistsError",
    "ApiToken",
    "AuthenticationError",
    "ConflictError",
    "CreatedApiToken",
    "CreatedDriver",
    "CreatedQpu",
    "DeadlineExceededError",
    "Driver",
    "Event",
    "FailedPreconditionError",
    "InsufficientQpuSecondsError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidQasmError",
    "Job",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "LoginSession",
    "NotFoundError",
    "Notification",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QPIClient",
    "QPIError",
    "Qpu",
    "QpuNotFoundError",
    "ResourceExhaustedError",
    "ServerInfo",
    "TimeRequest",
    "TimeSlot",
    "UnavailableError",
    "User",
]
