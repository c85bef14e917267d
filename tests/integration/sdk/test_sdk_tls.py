"""TLS: trusting the server's CA by PEM or by pinned fingerprint alone."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from qpi.sdk import QPIClient


@pytest.fixture
def tls_server(server_factory: Any) -> Any:
    return server_factory(insecure=False)


def test_tls_with_ca_pem_and_matching_fingerprint(tls_server: Any) -> None:
    with QPIClient(
        f"grpcs://{tls_server.grpc_target}",
        ca_pem=tls_server.ca_pem,
        ca_fingerprint=tls_server.ca_fingerprint,
    ) as client:
        session = client.login(tls_server.admin_email, tls_server.admin_password)
        assert session.user.is_superuser
        assert client.server_info().ca_fingerprint == tls_server.ca_fingerprint


def test_tls_with_fingerprint_only_pins_the_presented_ca(tls_server: Any) -> None:
    with QPIClient(
        f"grpcs://{tls_server.grpc_target}", ca_fingerprint=tls_server.ca_fingerprint
    ) as client:
        assert client.server_info().grpc_tls


def test_wrong_fingerprint_is_refused(tls_server: Any) -> None:
    with pytest.raises(ssl.SSLError, match="fingerprint"):
        QPIClient(f"grpcs://{tls_server.grpc_target}", ca_fingerprint="00" * 32)
    with pytest.raises(ssl.SSLError, match="fingerprint"):
        QPIClient(
            f"grpcs://{tls_server.grpc_target}", ca_pem=tls_server.ca_pem, ca_fingerprint="ab" * 32
        )
