"""Gateway configuration: one immutable object handed to :func:`qpi.gateway.app.create_app`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to know; built by the server and passed down explicitly."""

    grpc_target: str
    """Plaintext gRPC target of the services, e.g. ``unix:/run/qpi/grpc.sock``."""
    local_calls: Mapping[str, Callable[[Any, Sequence[tuple[str, str]]], Awaitable[Any]]] | None = (
        field(default=None, compare=False, hash=False)
    )
    """Unary methods the server answers in this process, by gRPC path
    (``/qpi.v1.JobService/GetJob``), so those calls skip the channel; None: all use it."""
    qpus_collection: str = "qpus"
    """REST collection name for QPUs."""
    timeslots_collection: str = "time_slots"
    """REST collection name for time slots."""
    jobs_collection: str = "quantum_jobs"
    """REST collection name for jobs."""
    api_tokens_collection: str = "api_tokens"
    """REST collection name for API tokens."""
    notifications_collection: str = "notifications"
    """REST collection name for notifications."""
    qpu_time_requests_collection: str = "qpu_time_requests"
    """REST collection name for QPU-time requests."""
    users_collection: str = "users"
    """REST collection name for users."""
    drivers_collection: str = "drivers"
    """REST collection name for drivers."""
    events_collection: str = "events"
    """REST collection name for driver telemetry events."""
    dashboard_dir: Path | None = None
    """Directory of the built dashboard (``index.html`` inside), checked on each request so a
    build made after start-up is served; None or an unbuilt directory serves a page saying
    how to build it."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest accepted request body, in bytes (default 2 MiB); larger bodies get 413."""
    sse_ping_seconds: float = 15.0
    """Seconds between SSE heartbeat comments on /api/realtime/events."""
