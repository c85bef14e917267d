"""Target parsing and CA fingerprints."""

import hashlib
import ssl

import pytest

from qpi.sdk._transport import ca_fingerprint_of, parse_target


@pytest.mark.parametrize(
    ("target", "address", "tls"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("localhost:1", "localhost:1", False),
        ("qpi.example.org:443", "qpi.example.org:443", True),
        ("grpc://qpi.example.org:80", "qpi.example.org:80", False),
        ("grpcs://127.0.0.1:50051/", "127.0.0.1:50051", True),
        ("grpcs://[::1]:50051", "[::1]:50051", True),
    ],
)
def test_parse_target(target: str, address: str, tls: bool) -> None:
    endpoint = parse_target(target, None)
    assert (endpoint.address, endpoint.tls) == (address, tls)


def test_explicit_tls_overrides_scheme() -> None:
    assert parse_target("grpc://h:1", True).tls is True
    assert parse_target("grpcs://h:1", False).tls is False


@pytest.mark.parametrize("target", ["http://h:1", "h", "h:port", ":1"])
def test_bad_targets_are_rejected(target: str) -> None:
    with pytest.raises(ValueError, match="target|scheme"):
        parse_target(target, None)


def test_ca_fingerprint_is_sha256_of_der() -> None:
    der = bytes(range(64))
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    assert ca_fingerprint_of(pem) == hashlib.sha256(der).hexdigest()
