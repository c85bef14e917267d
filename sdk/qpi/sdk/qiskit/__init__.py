"""Qiskit integration: a provider, a ``BackendV2`` per QPU, and a streaming ``JobV1``.

Requires the ``qiskit`` extra (``pip install qpi-sdk[qiskit]``).

Example:
    >>> from qiskit.primitives import BackendSamplerV2
    >>> from qpi.sdk.qiskit import QPIProvider
    >>> backend = QPIProvider(client).get_backend("qpu-1")
    >>> BackendSamplerV2(backend=backend).run([bell]).result()[0].data.c.get_counts()
    {'00': 510, '11': 514}
"""

from qpi.sdk.qiskit.backend import QPIBackend
from qpi.sdk.qiskit.job import QPIJob
from qpi.sdk.qiskit.provider import QPIProvider

__all__ = ["QPIBackend", "QPIJob", "QPIProvider"]
