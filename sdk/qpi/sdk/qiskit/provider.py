"""``QPIProvider``: discovers a server's QPUs as Qiskit backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qpi.sdk.qiskit.backend import QPIBackend

if TYPE_CHECKING:
    from qpi.sdk.client import QPIClient


class QPIProvider:
    """Lists and opens the QPUs of a QPI server as :class:`QPIBackend` objects.

    Example:
        >>> from qpi.sdk import QPIClient
        >>> from qpi.sdk.qiskit import QPIProvider
        >>> provider = QPIProvider(QPIClient("grpc://127.0.0.1:50051", api_token="qpi_..."))
        >>> [b.name for b in provider.backends(online_only=True)]
        ['qpu-1']
    """

    def __init__(self, client: QPIClient) -> None:
        self._client = client

    @property
    def client(self) -> QPIClient:
        """The client the backends use."""
        return self._client

    def backends(self, name: str | None = None, *, online_only: bool = False) -> list[QPIBackend]:
        """Returns a backend per QPU, optionally only the one called ``name``."""
        qpus = self._client.list_qpus(online_only=online_only)
        return [QPIBackend(self._client, q, self) for q in qpus if name in (None, q.name)]

    def get_backend(self, name_or_id: str) -> QPIBackend:
        """Returns the backend of the QPU with this name or id.

        Raises:
            QpuNotFoundError: No such QPU.
        """
        return QPIBackend(self._client, self._client.get_qpu(name_or_id), self)
