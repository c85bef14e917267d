"""Channel construction: target parsing, TLS with optional CA pinning, auth metadata."""

from __future__ import annotations

import _ssl
import hashlib
import json
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]

from qpi.v1 import (
    account_service_pb2,
    admin_service_pb2,
    booking_service_pb2,
    event_service_pb2,
    job_service_pb2,
    notification_service_pb2,
    qpu_service_pb2,
)

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _retriable_methods() -> list[dict[str, str]]:
    """Calls safe to repeat: every read, plus job creation (idempotent by request id) and
    cancellation (a repeat of a done cancel changes nothing)."""
    names: list[dict[str, str]] = []
    modules = (
        account_service_pb2, admin_service_pb2, booking_service_pb2, event_service_pb2,
        job_service_pb2, notification_service_pb2, qpu_service_pb2,
    )  # fmt: skip
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                name = method.name
                if name.startswith(("Get", "List", "Watch", "Subscribe")) or name in (
                    "CreateJob",
                    "CancelJob",
                ):
                    names.append({"service": service.full_name, "method": name})
    return names


# gRPC's own retries for calls that failed with UNAVAILABLE (server restarting, database
# outage): it honours the server's pushback hint and never retries after a response began.
_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": _retriable_methods(),
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.5s",
                "maxBackoff": "5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}

# Results of large jobs (per-shot memory) exceed grpc's 4 MiB default receive limit.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Keep idle watch streams alive through NATs and proxies.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnect within seconds once a restarted server is back (the default backoff grows
    # to two minutes, far beyond any wait() deadline).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed target: ``address`` is ``host:port``; ``tls`` is the resolved choice."""

    address: str
    host: str
    port: int
    tls: bool


def parse_target(target: str, tls: bool | None) -> Endpoint:
    """Parses ``host:port``, ``grpc://host:port`` or ``grpcs://host:port``.

    The scheme decides TLS unless ``tls`` is given explicitly. Without a scheme, loopback
    hosts default to plaintext and all others to TLS.

    Raises:
        ValueError: The target has no port or an unknown scheme.
    """
    scheme, sep, rest = target.partition("://")
    if not sep:
        scheme, rest = "", target
    if scheme not in ("", "grpc", "grpcs"):
        raise ValueError(f"unsupported scheme {scheme!r} in target {target!r}")
    rest = rest.rstrip("/")
    host, colon, port_text = rest.rpartition(":")
    if not colon or not port_text.isdigit() or not host:
        raise ValueError(f"target {target!r} must be host:port")
    if tls is None:
        tls = scheme == "grpcs" or (scheme == "" and host not in _LOOPBACK)
    return Endpoint(address=rest, host=host.strip("[]"), port=int(port_text), tls=tls)


def ca_fingerprint_of(pem: bytes) -> str:
    """Lowercase hex SHA-256 of the DER encoding of the first certificate in ``pem``."""
    der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii").strip() + "\n")
    return hashlib.sha256(der).hexdigest()


def _fetch_pinned_ca(host: str, port: int, fingerprint: str, timeout: float) -> bytes:
    """Finds the certificate matching ``fingerprint`` in the server's TLS chain.

    The handshake is unverified on purpose: trust comes from the pinned fingerprint, which
    the administrator handed out out-of-band (trust-on-first-use with a known pin).
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls_sock,
    ):
        chain: list[Any] = []
        sslobj = getattr(tls_sock, "_sslobj", None)
        getter = getattr(sslobj, "get_unverified_chain", None)
        if getter is not None:
            chain = list(getter() or [])
        ders = [c.public_bytes(_ssl.ENCODING_DER) for c in chain]
        leaf = tls_sock.getpeercert(binary_form=True)
        if leaf:
            ders.append(leaf)
    for der in ders:
        if hashlib.sha256(der).hexdigest() == fingerprint:
            return ssl.DER_cert_to_PEM_cert(der).encode("ascii")
    raise ssl.SSLError(
        f"no certificate presented by {host}:{port} matches CA fingerprint {fingerprint}; "
        "pass ca_pem= (e.g. downloaded from /api/pub/root-ca.pem) instead"
    )


def open_channel(
    endpoint: Endpoint,
    *,
    ca_pem: bytes | None,
    ca_fingerprint: str | None,
    timeout: float,
    interceptors: Sequence[Any] = (),
) -> grpc.Channel:
    """Opens a sync channel for ``endpoint``; verifies the pin when both CA inputs are given.

    Raises:
        ssl.SSLError: ``ca_pem`` does not match ``ca_fingerprint``, or no presented
            certificate does.
    """
    if not endpoint.tls:
        channel = grpc.insecure_channel(endpoint.address, options=_CHANNEL_OPTIONS)
    else:
        pin = ca_fingerprint.replace(":", "").lower() if ca_fingerprint else None
        if ca_pem is None and pin is not None:
            ca_pem = _fetch_pinned_ca(endpoint.host, endpoint.port, pin, timeout)
        if ca_pem is not None and pin is not None and ca_fingerprint_of(ca_pem) != pin:
            raise ssl.SSLError(f"CA certificate does not match pinned fingerprint {pin}")
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        channel = grpc.secure_channel(endpoint.address, credentials, options=_CHANNEL_OPTIONS)
    if interceptors:
        channel = grpc.intercept_channel(channel, *interceptors)
    return channel
