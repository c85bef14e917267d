"""Server settings: one immutable object built once by the CLI and passed down explicitly.

Every field maps to a CLI flag (``--field-name``), an environment variable
(``QPI_FIELD_NAME``) and a config-file key (camelCase ``fieldName``); the loader in
:mod:`qpi.server.config` applies the precedence flag > env > file > default.
Durations are stored as float seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    """Everything `qpi serve` can be told. Units are in the field docs."""

    config_file: str = "qpi.config.yml"
    """Path to a JSON or YAML configuration file; a missing default file is ignored."""
    domain: str = ""
    """DNS name of this server; added to the TLS certificate's SANs."""
    ip_addr: str = "127.0.0.1"
    """IP address drivers use to reach this server; added to the certificate's SANs."""
    bind_host: str = "0.0.0.0"
    """Interface the HTTP and gRPC listeners bind to."""
    server_port: int = 8090
    """HTTP port of the REST gateway (and dashboard)."""
    grpc_port: int = 50051
    """gRPC port (TLS unless --insecure). 0 picks a free port."""
    data_dir: str = "qpi_data"
    """Directory for the SQLite database, TLS material and driver data."""
    dashboard_dir: str = ""
    """Built dashboard served at /dashboard/; empty means dashboard/dist of this checkout."""
    database_url: str = ""
    """SQLAlchemy URL; empty means a SQLite file `qpi.db` in the data directory."""
    tls_ca_cert_file: str = ".qpi.ca.pem"
    """Root CA certificate (relative paths resolve inside the data directory)."""
    tls_ca_key_file: str = ".qpi.ca.key"
    """Root CA private key (mode 0600)."""
    tls_cert_file: str = ".qpi.cert.pem"
    """Server leaf certificate."""
    tls_key_file: str = ".qpi.key"
    """Server leaf private key (mode 0600)."""
    insecure: bool = False
    """Serve gRPC in plaintext. Only for local development and tests."""
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
    idle_threshold: float = 5.0
    """Seconds a booked QPU is held for its booker after their last finished job."""
    recovery_interval: float = 10.0
    """Seconds between stale-job recovery sweeps."""
    job_timeout: float = 20.0
    """Seconds a running job's lease survives without a heartbeat from its driver."""
    dispatch_poll_interval: float = 1.0
    """Seconds between safety sweeps of the dispatcher (dispatch itself is event-driven)."""
    heartbeat_interval: float = 2.0
    """Seconds between driver heartbeats (told to drivers in Welcome)."""
    heartbeat_timeout: float = 10.0
    """Seconds of driver silence after which its stream is closed and its jobs requeued."""
    port_range_start: int = 6000
    """First port for NNG compatibility listeners."""
    port_range_end: int = 7000
    """End (exclusive) of the NNG port range."""
    disable_email_password_auth: bool = False
    """Refuse e-mail/password login for regular users (administrators can always log in)."""
    oauth2_providers: str = ""
    """JSON array of OAuth2/OpenID Connect providers for sign-in (see "OAuth2 sign-in")."""
    allow_signup: bool = False
    """Allow anyone to create a user account (with a zero balance)."""
    session_ttl: float = 7 * 24 * 3600.0
    """Lifetime of login session tokens, in seconds."""
    login_limit_per_account: str = "10 per 15 minutes"
    """Failed logins allowed per account (moving window, e.g. `10 per 15 minutes`); further
    attempts get 429/RESOURCE_EXHAUSTED with a retry time. Empty disables."""
    login_limit_per_address: str = "30 per minute"
    """Failed logins allowed per client address (same notation); empty disables."""
    max_shots: int = 100_000
    """Largest accepted shots value per circuit."""
    max_circuits: int = 1_000
    """Largest number of circuits in one job."""
    max_payload_bytes: int = 1_048_576
    """Largest accepted job payload (sum of circuit sources and parameters), in bytes."""
    max_circuit_width: int = 1_000
    """Most qubits, and most classical bits, one circuit may declare; wider circuits are
    refused with 400/CIRCUIT_TOO_LARGE before any parsing."""
    max_operations: int = 500_000
    """Most operations one job may expand to (gates applied to whole registers count once
    per qubit; custom gates and literal loops are multiplied out), over all its circuits;
    checked before parsing (400/CIRCUIT_TOO_LARGE)."""
    max_parse_time: float = 120.0
    """Longest a job's circuits may take to parse; slower ones get 400/PARSE_BUDGET_EXCEEDED."""
    max_parser_memory: int = 536_870_912
    """Bytes a circuit-parser process may allocate for one job (beyond its own start-up
    footprint); more gets 400/PARSE_BUDGET_EXCEEDED."""
    parser_processes: int = 2
    """Worker processes that parse submitted circuits, away from the request and database
    threads; with two or more, one only takes small jobs, so they never wait behind a big
    one."""
    max_result_bytes: int = 16_777_216
    """Largest accepted result from a driver, in bytes; larger results fail the job."""
    max_pending_per_user: int = 1_000
    """Most pending jobs one user may have queued; more get 429/RESOURCE_EXHAUSTED.
    Administrators are exempt."""
    shot_seconds_estimate: float = 0.001
    """Expected QPU seconds per shot. A job's estimate (shots x circuits x parameter sets x
    this) is reserved from its owner's balance while it runs; jobs whose estimate exceeds
    what the balance leaves stay pending."""
    qpu_shot_seconds: str = ""
    """JSON object of per-QPU seconds per shot by QPU name, e.g. `{"fridge": 0.0005}`;
    other QPUs use --shot-seconds-estimate."""
    booking_max_length: float = 8 * 3600.0
    """Longest time slot a user may book; 0 means no limit. Administrators are exempt."""
    booking_max_horizon: float = 30 * 24 * 3600.0
    """How far ahead a user's booking may end; 0 means no limit."""
    booking_max_weekly: float = 20 * 3600.0
    """Most time one user may have booked per calendar week (Monday 00:00 UTC); 0 means no
    limit."""
    events_retention: float = 720 * 3600.0
    """Seconds telemetry events are kept; 0 keeps them forever."""
    events_prune_interval: float = 3600.0
    """Seconds between telemetry pruning sweeps."""
    event_rate_limit: float = 100.0
    """Telemetry events per second accepted from one driver; 0 or less means unlimited."""
    log_level: str = "INFO"
    """Python logging level."""
    extra: dict[str, str] = field(default_factory=dict)
    """Reserved for forward-compatible keys; always empty today."""

    @property
    def data_path(self) -> Path:
        """The data directory as a path."""
        return Path(self.data_dir)

    def resolve(self, name: str) -> Path:
        """Resolves a file setting relative to the data directory."""
        path = Path(name)
        return path if path.is_absolute() else self.data_path / path

    @property
    def effective_database_url(self) -> str:
        """The database URL to use (SQLite in the data directory by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_path / 'qpi.db').resolve()}"
