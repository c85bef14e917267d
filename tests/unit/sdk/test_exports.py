"""Pins the public API: an accidental export or removal fails here."""

import qpi.sdk
import qpi.sdk.qiskit

EXPECTED_SDK_EXPORTS = [
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

EXPECTED_QISKIT_EXPORTS = ["QPIBackend", "QPIJob", "QPIProvider"]


def test_sdk_exports_are_pinned() -> None:
    assert qpi.sdk.__all__ == EXPECTED_SDK_EXPORTS
    for name in EXPECTED_SDK_EXPORTS:
        assert hasattr(qpi.sdk, name)


def test_qiskit_exports_are_pinned() -> None:
    assert qpi.sdk.qiskit.__all__ == EXPECTED_QISKIT_EXPORTS


def test_client_has_parity_methods() -> None:
    """Every method of the published qpi-client (spec §9.1) exists, minus removed routes."""
    parity = [
        "submit_job", "get_job", "list_jobs", "cancel_job", "get_backend", "job",
        "list_qpus", "get_qpu", "create_qpu", "toggle_qpu", "list_notifications",
        "dismiss_notification", "list_time_slots", "create_time_slot", "update_time_slot",
        "delete_time_slot", "list_time_requests", "create_time_request",
        "update_time_request", "list_users", "allocate_qpu_time", "auth_with_password",
        "close", "__enter__", "__exit__",
    ]  # fmt: skip
    missing = [m for m in parity if not callable(getattr(qpi.sdk.QPIClient, m, None))]
    assert missing == []
