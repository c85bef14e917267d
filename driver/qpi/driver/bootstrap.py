"""Server discovery and root-CA pinning before the gRPC stream is opened.

The driver fetches `/api/pub/server-info` and `/api/pub/root-ca.pem` over plain HTTP and
trusts the CA only if the SHA-256 of its DER encoding equals the fingerprint the operator
copied from the dashboard, so a man in the middle cannot substitute its own CA.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped, unused-ignore]
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

log = logging.getLogger(__name__)


class SecurityError(RuntimeError):
    """The server's CA could not be verified; the driver must not connect."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to open the gRPC channel.

    Attributes:
        target: "host:port".
        credentials: Channel credentials, or None for an insecure channel.
        server_version: Version reported by the server.
    """

    target: str
    credentials: grpc.ChannelCredentials | None
    server_version: str = ""


def ca_fingerprint(pem: bytes) -> str:
    """Returns the lowercase hex SHA-256 of a PEM certificate's DER encoding.

    Raises:
        SecurityError: If the data is not a PEM certificate.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SecurityError(f"the server's root CA is not a valid PEM certificate: {exc}") from exc
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _host_of(url: str) -> str:
    host = urlsplit(url).hostname or "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def discover(
    qpi_addr: str,
    expected_fingerprint: str,
    ca_file: Path,
    grpc_addr: str | None = None,
    timeout: float = 5.0,
) -> Endpoint:
    """Fetches server info, verifies and stores the root CA, and builds the endpoint.

    Args:
        qpi_addr: HTTP base URL of the server.
        expected_fingerprint: Pinned CA fingerprint (hex, any case, colons allowed).
        ca_file: Where to store the verified CA.
        grpc_addr: Optional "host:port" that overrides the discovered gRPC address.
        timeout: HTTP timeout in seconds.

    Returns:
        The endpoint to connect to.

    Raises:
        SecurityError: On a fingerprint mismatch or a TLS server without a pinned fingerprint.
        httpx.HTTPError: If the server cannot be reached (callers retry).
    """
    expected = expected_fingerprint.strip().lower().replace(":", "")
    with httpx.Client(base_url=qpi_addr, timeout=timeout) as client:
        info_response = client.get("/api/pub/server-info")
        info_response.raise_for_status()
        try:
            info = info_response.json()
            target = grpc_addr or f"{_host_of(qpi_addr)}:{int(info['grpc_port'])}"
            version = str(info.get("version", ""))
            tls = bool(info.get("grpc_tls", True))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A proxy or a half-started server: retry rather than die.
            raise ValueError(f"malformed server-info from {qpi_addr}: {exc!r}") from exc
        if not tls:
            if expected:
                # server-info travels over plain HTTP: a pinned driver must never let it
                # switch TLS off, or anyone on the path could read the token.
                raise SecurityError(
                    "CRITICAL SECURITY ERROR: a CA fingerprint is pinned but the server "
                    f"at {qpi_addr} claims its gRPC port has no TLS; refusing to send the "
                    "token in clear text"
                )
            log.warning("the server's gRPC port has no TLS; the token travels in clear text")
            return Endpoint(target, None, version)
        if not expected:
            raise SecurityError(
                "CRITICAL SECURITY ERROR: the server uses TLS but no --ca-fingerprint was given; "
                "copy the fingerprint shown in the dashboard for this QPU"
            )
        pem_response = client.get("/api/pub/root-ca.pem")
        pem_response.raise_for_status()
        pem = pem_response.content
    actual = ca_fingerprint(pem)
    if not hmac.compare_digest(actual, expected):
        raise SecurityError(
            "CRITICAL SECURITY ERROR: the root CA served by "
            f"{qpi_addr} has fingerprint {actual}, expected {expected}. Someone may be "
            "intercepting the connection; refusing to connect."
        )
    if info.get("ca_fingerprint") and info["ca_fingerprint"].lower() != actual:
        log.warning("server-info reports a different CA fingerprint than the CA it serves")
    _store(ca_file, pem)
    creds = grpc.ssl_channel_credentials(root_certificates=pem)
    return Endpoint(target, creds, version)


def _store(path: Path, pem: bytes) -> None:
    if path.exists() and path.read_bytes() == pem:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(pem)
    tmp.replace(path)
