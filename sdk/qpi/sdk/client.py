"""The :class:`QPIClient` façade over QPI's gRPC API."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from qpi.sdk._accounts import AccountsMixin
from qpi.sdk._bookings import BookingsMixin
from qpi.sdk._jobs import JobsMixin
from qpi.sdk._qpus import QpusMixin

if TYPE_CHECKING:
    from qpi.sdk.qiskit.backend import QPIBackend
    from qpi.sdk.qiskit.job import QPIJob


class QPIClient(JobsMixin, QpusMixin, AccountsMixin, BookingsMixin):
    """Synchronous client for a QPI server (thread-safe; one channel per client).

    Args:
        target: ``"host:port"``, ``"grpc://host:port"`` (plaintext) or
            ``"grpcs://host:port"`` (TLS).
        api_token: API or session token sent as ``authorization: Bearer <token>``.
            :meth:`login` replaces it with a session token.
        tls: Force TLS on or off. By default the scheme decides; without a scheme,
            loopback hosts use plaintext and others TLS.
        ca_pem: Root CA certificate(s) to trust, PEM. Default: the system trust store.
        ca_fingerprint: Lowercase hex SHA-256 of the server's root CA (DER). Checked
            against ``ca_pem``; without ``ca_pem`` the matching CA is taken from the
            server's TLS handshake and pinned.
        timeout: Deadline in seconds for each unary call (streams have none by default).
        interceptors: gRPC client interceptors applied to the channel (e.g. for tracing).

    Example:
        >>> from qpi.sdk import QPIClient
        >>> with QPIClient("grpcs://qpi.example.org:50051", api_token="qpi_...") as client:
        ...     job = client.submit_job(["OPENQASM 3.0; ..."], shots=1000, qpu_target="qpu-1")
        ...     print(client.wait(job.id, timeout=120).counts)
    """

    def __init__(
        self,
        target: str,
        *,
        api_token: str | None = None,
        tls: bool | None = None,
        ca_pem: bytes | None = None,
        ca_fingerprint: str | None = None,
        timeout: float = 30.0,
        interceptors: Sequence[Any] = (),
    ) -> None:
        super().__init__(
            target,
            api_token=api_token,
            tls=tls,
            ca_pem=ca_pem,
            ca_fingerprint=ca_fingerprint,
            timeout=timeout,
            interceptors=interceptors,
        )

    def get_backend(self, name: str) -> QPIBackend:
        """Returns a Qiskit ``BackendV2`` that runs circuits on the QPU ``name`` (or id).

        Requires the ``qiskit`` extra.

        Example:
            >>> backend = client.get_backend("qpu-1")
            >>> backend.run(bell, shots=1000).result().get_counts()
            {'00': 498, '11': 502}
        """
        from qpi.sdk.qiskit.backend import QPIBackend

        return QPIBackend(self, self.get_qpu(name))

    def job(self, job_id: str) -> QPIJob:
        """Wraps an existing job id in a Qiskit ``JobV1`` (without a backend)."""
        from qpi.sdk.qiskit.job import QPIJob

        return QPIJob(None, job_id, self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"QPIClient(target={self.target!r})"
