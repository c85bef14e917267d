"""Private PKI: creation, file modes, reload, renewal and verification of the chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from qpi.server.security.pki import (
    CA_ORGANIZATION,
    PkiMaterial,
    ca_fingerprint,
    load_or_create_pki,
    needs_renewal,
)

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


class Files:
    """The four PKI paths inside a (not yet existing) nested directory."""

    def __init__(self, root: Path) -> None:
        base = root / "nested" / "tls"
        self.ca_cert = base / "ca.pem"
        self.ca_key = base / "ca.key"
        self.cert = base / "cert.pem"
        self.key = base / "cert.key"

    def load(self, now: dt.datetime = NOW, hosts: tuple[str, ...] = ()) -> PkiMaterial:
        return load_or_create_pki(
            self.ca_cert, self.ca_key, self.cert, self.key, hosts=hosts, now=now
        )


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def leaf_of(material: PkiMaterial) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.cert_pem)


def ca_of(material: PkiMaterial) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.ca_cert_pem)


def test_creates_files_with_modes_and_parents(files: Files) -> None:
    material = files.load()
    for path, mode in [
        (files.ca_cert, 0o644),
        (files.ca_key, 0o600),
        (files.cert, 0o644),
        (files.key, 0o600),
    ]:
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert files.ca_cert.read_bytes() == material.ca_cert_pem
    assert files.cert.read_bytes() == material.cert_pem
    assert files.key.read_bytes() == material.key_pem
    # No temporary files are left behind.
    assert sorted(p.name for p in files.ca_cert.parent.iterdir()) == sorted(
        ["ca.pem", "ca.key", "cert.pem", "cert.key"]
    )


def test_certificate_contents(files: Files) -> None:
    material = files.load(hosts=("qpi.example.org", "10.1.2.3", "fd00::1"))
    ca, leaf = ca_of(material), leaf_of(material)

    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        CA_ORGANIZATION
    )
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= dt.timedelta(days=3650)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)

    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "qpi.example.org"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(ip) for ip in ("127.0.0.1", "::1", "10.1.2.3", "fd00::1")
    }
    lifetime = leaf.not_valid_after_utc - NOW
    assert dt.timedelta(days=29) < lifetime <= dt.timedelta(days=30)


def test_fingerprint_is_sha256_of_ca_der_and_stable_across_reload(files: Files) -> None:
    first = files.load()
    der = ca_of(first).public_bytes(serialization.Encoding.DER)
    assert first.fingerprint == hashlib.sha256(der).hexdigest()
    assert first.fingerprint == ca_fingerprint(first.ca_cert_pem)
    assert first.fingerprint == first.fingerprint.lower()
    assert len(first.fingerprint) == 64

    second = files.load(now=NOW + dt.timedelta(days=1))
    assert second == first  # nothing rewritten when everything is still fine


def test_ca_fingerprint_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        ca_fingerprint(b"not a certificate")


def test_ca_verifies_leaf_with_cryptography_policy(files: Files) -> None:
    material = files.load(hosts=("qpi.example.org", "10.1.2.3"))
    verifier = (
        PolicyBuilder()
        .store(Store([ca_of(material)]))
        .time(NOW + dt.timedelta(hours=1))
        .build_server_verifier(x509.DNSName("qpi.example.org"))
    )
    chain = verifier.verify(leaf_of(material), [])
    assert chain[-1] == ca_of(material)
    ip_verifier = (
        PolicyBuilder()
        .store(Store([ca_of(material)]))
        .time(NOW + dt.timedelta(hours=1))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("10.1.2.3")))
    )
    ip_verifier.verify(leaf_of(material), [])


def test_tls_handshake_with_python_ssl(files: Files) -> None:
    # Wall-clock time: the ssl module checks validity against the real clock.
    material = files.load(now=None)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert, files.key)
    client_ctx = ssl.create_default_context(cadata=material.ca_cert_pem.decode())

    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert client.getpeercert()["subjectAltName"]  # type: ignore[index]


def test_expired_leaf_is_renewed_in_place(files: Files, caplog: pytest.LogCaptureFixture) -> None:
    first = files.load()
    later = NOW + dt.timedelta(days=40)
    with caplog.at_level(logging.INFO, logger="qpi.server.security.pki"):
        second = files.load(now=later)
    assert second.fingerprint == first.fingerprint
    assert second.cert_pem != first.cert_pem
    assert leaf_of(second).not_valid_after_utc > later + dt.timedelta(days=29)
    assert files.cert.read_bytes() == second.cert_pem
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert any(r.levelno == logging.WARNING and "expired" in r.getMessage() for r in caplog.records)


def test_soon_expiring_leaf_is_renewed(files: Files) -> None:
    first = files.load()
    assert not needs_renewal(first, NOW + dt.timedelta(days=22))
    assert needs_renewal(first, NOW + dt.timedelta(days=24))
    second = files.load(now=NOW + dt.timedelta(days=24))
    assert second.cert_pem != first.cert_pem
    assert second.fingerprint == first.fingerprint
    assert not needs_renewal(second, NOW + dt.timedelta(days=24))


def test_leaf_reissued_when_hosts_not_covered(files: Files) -> None:
    first = files.load(hosts=("a.example.org",))
    assert needs_renewal(first, NOW, hosts=("b.example.org",))
    assert not needs_renewal(first, NOW, hosts=("A.example.org", "127.0.0.1"))
    second = files.load(hosts=("b.example.org", "192.0.2.7"))
    assert second.fingerprint == first.fingerprint
    san = leaf_of(second).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "b.example.org" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("192.0.2.7") in san.get_values_for_type(x509.IPAddress)
    # Covered already: no reissue.
    assert files.load(hosts=("b.example.org",)) == second


def test_ca_near_expiry_is_replaced_and_fingerprint_change_logged(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    first = files.load()
    late = ca_of(first).not_valid_after_utc - dt.timedelta(days=10)
    assert needs_renewal(first, late)
    with caplog.at_level(logging.WARNING, logger="qpi.server.security.pki"):
        second = files.load(now=late)
    assert second.fingerprint != first.fingerprint
    assert ca_of(second).not_valid_after_utc > late + dt.timedelta(days=3000)
    # The leaf was reissued under the new CA.
    leaf_of(second).verify_directly_issued_by(ca_of(second))
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "fingerprint changed" in messages
    assert first.fingerprint in messages
    assert second.fingerprint in messages


@pytest.mark.parametrize(
    ("target", "content"),
    [
        ("ca_cert", b"garbage"),
        ("ca_cert", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ("ca_key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        ("ca_key", None),
    ],
)
def test_broken_ca_files_are_regenerated_with_warning(
    files: Files, caplog: pytest.LogCaptureFixture, target: str, content: bytes | None
) -> None:
    first = files.load()
    path: Path = getattr(files, target)
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="qpi.server.security.pki"):
        second = files.load()
    assert second.fingerprint != first.fingerprint
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    leaf_of(second).verify_directly_issued_by(ca_of(second))


def test_wrong_type_files_are_regenerated(files: Files) -> None:
    first = files.load()
    # A certificate where the key belongs, and the CA where the leaf belongs.
    files.key.write_bytes(first.cert_pem)
    files.cert.write_bytes(first.ca_cert_pem)
    second = files.load()
    assert second.fingerprint == first.fingerprint
    leaf = leaf_of(second)
    leaf.verify_directly_issued_by(ca_of(second))
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_mismatched_leaf_key_is_regenerated(files: Files) -> None:
    first = files.load()
    other = ec.generate_private_key(ec.SECP256R1())
    files.key.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    second = files.load()
    assert second.cert_pem != first.cert_pem
    key = serialization.load_pem_private_key(second.key_pem, password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == leaf_of(second).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_leaf_from_another_ca_is_reissued(tmp_path: Path) -> None:
    one, two = Files(tmp_path / "one"), Files(tmp_path / "two")
    one.load()
    material_two = two.load()
    two.cert.write_bytes(one.cert.read_bytes())
    two.key.write_bytes(one.key.read_bytes())
    fixed = two.load()
    assert fixed.fingerprint == material_two.fingerprint
    leaf_of(fixed).verify_directly_issued_by(ca_of(fixed))


def test_naive_now_is_utc(files: Files) -> None:
    material = files.load(now=NOW.replace(tzinfo=None))
    assert leaf_of(material).not_valid_before_utc < NOW


def test_non_ascii_host_is_rejected(files: Files) -> None:
    with pytest.raises(ValueError, match="IDNA"):
        files.load(hosts=("bücher.example",))
