"""The server's private PKI: a root CA that drivers pin by fingerprint, and a leaf for TLS.

Key algorithm: ECDSA on P-256 for both CA and leaf. Generation takes milliseconds (RSA
4096, used by the original server, takes seconds and slows every test and renewal), every
TLS stack that gRPC, Python's ssl and browsers use supports it, and its security level
(about 128 bits) matches RSA 3072. Existing RSA files from older installs are still loaded
and used as long as they are otherwise valid.

Lifetimes: the CA lives 10 years and is replaced when it has less than 30 days left (which
changes the fingerprint drivers pin, so that is logged loudly); the leaf lives 30 days and
is renewed in place (same CA) when it has less than 7 days left, so a periodic job calling
:func:`needs_renewal` once a day always renews long before expiry.

Unlike the original, broken or expired files never stop the server: they are regenerated
with a WARNING that says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_ORGANIZATION",
    "CA_RENEW_BEFORE",
    "CA_VALIDITY",
    "LEAF_ORGANIZATION",
    "LEAF_RENEW_BEFORE",
    "LEAF_VALIDITY",
    "PkiMaterial",
    "ca_due",
    "ca_fingerprint",
    "load_or_create_pki",
    "needs_renewal",
]

logger = logging.getLogger(__name__)

CA_ORGANIZATION = "Quantum Processing Interface CA"
LEAF_ORGANIZATION = "Quantum Processing Interface"
CA_VALIDITY = dt.timedelta(days=3650)
CA_RENEW_BEFORE = dt.timedelta(days=30)
LEAF_VALIDITY = dt.timedelta(days=30)
LEAF_RENEW_BEFORE = dt.timedelta(days=7)
# Certificates start a little in the past so peers with slightly slow clocks accept them.
_BACKDATE = dt.timedelta(minutes=5)
_DEFAULT_DNS = ("localhost",)
_DEFAULT_IPS = ("127.0.0.1", "::1")

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class PkiMaterial:
    """PEM material for serving TLS and telling drivers which CA to pin.

    Attributes:
        ca_cert_pem: The root CA certificate (what drivers trust / pin).
        cert_pem: The server's leaf certificate (leaf only, not the chain).
        key_pem: The leaf's private key (PKCS#8, unencrypted).
        fingerprint: Lowercase hex SHA-256 of the CA certificate's DER encoding.
    """

    ca_cert_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    fingerprint: str


class _Unusable(Exception):
    """A PKI file exists but cannot be used; the message says why."""


def ca_fingerprint(pem: bytes) -> str:
    """Returns the lowercase hex SHA-256 of the DER of the first certificate in a PEM.

    Args:
        pem: A PEM certificate (only the first block is used).

    Returns:
        64 lowercase hex characters, no separators.

    Raises:
        ValueError: If the PEM holds no parsable certificate.
    """
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def needs_renewal(
    material: PkiMaterial,
    now: dt.datetime | None = None,
    *,
    hosts: Sequence[str] = (),
) -> bool:
    """Tells a periodic job whether :func:`load_or_create_pki` would change anything.

    Args:
        material: The material currently served.
        now: The current time (defaults to the wall clock; naive values are UTC).
        hosts: Extra DNS names / IP addresses the leaf must cover.

    Returns:
        True if the CA or the leaf is close to expiry, not yet valid, or the leaf does not
        cover ``hosts`` or was not issued by the CA.
    """
    moment = _utc(now)
    try:
        ca = x509.load_pem_x509_certificate(material.ca_cert_pem)
        leaf = x509.load_pem_x509_certificate(material.cert_pem)
        _check_ca_time(ca, moment)
        _check_leaf(leaf, ca, moment, hosts)
    except (ValueError, _Unusable):
        return True
    return False


def ca_due(ca_cert_path: str | os.PathLike[str], now: dt.datetime | None = None) -> bool:
    """Whether :func:`load_or_create_pki` would create a new CA from these files (missing,
    unusable, or within 30 days of expiry): with replicas sharing the CA, only one of
    them (the leader) may do that, the others reload what it wrote."""
    try:
        cert = _read_cert(Path(ca_cert_path))
        _check_is_ca(cert)
        _check_ca_time(cert, _utc(now))
    except _Unusable:
        return True
    return False


def load_or_create_pki(
    ca_cert_path: str | os.PathLike[str],
    ca_key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    *,
    hosts: Sequence[str],
    now: dt.datetime | None = None,
) -> PkiMaterial:
    """Loads the CA and leaf from disk, creating or renewing whatever is unusable.

    The CA is (re)created when a file is missing, unparsable, of the wrong PEM type, not a
    CA, not matching its key, not yet valid, or within 30 days of expiry. The leaf is
    (re)issued when the CA changed, a file is unusable, it was not signed by the CA, it
    expires within 7 days, or its SANs do not cover ``localhost``, ``127.0.0.1``, ``::1``
    and ``hosts``. Private keys are written with mode 0600, certificates 0644; missing
    parent directories are created. Writes are atomic (temp file + rename).

    Args:
        ca_cert_path: Root CA certificate (PEM).
        ca_key_path: Root CA private key (PEM).
        cert_path: Leaf certificate (PEM).
        key_path: Leaf private key (PEM).
        hosts: DNS names and/or IP addresses the leaf must be valid for; empty strings are
            skipped.
        now: The current time, for tests (defaults to the wall clock; naive values are
            taken as UTC).

    Returns:
        The material now on disk.

    Raises:
        OSError: If the files cannot be written.
        ValueError: If a host is not usable in a certificate (e.g. non-ASCII name).
    """
    moment = _utc(now)
    ca_cert_file, ca_key_file = Path(ca_cert_path), Path(ca_key_path)
    cert_file, key_file = Path(cert_path), Path(key_path)
    dns_names, ips = _split_hosts(hosts)

    ca_cert, ca_key, ca_changed = _load_or_create_ca(ca_cert_file, ca_key_file, moment)
    fingerprint = hashlib.sha256(ca_cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    leaf_cert: x509.Certificate | None = None
    leaf_key: _PrivateKey | None = None
    try:
        leaf_cert = _read_cert(cert_file)
        leaf_key = _read_key(key_file)
        _check_key_matches(leaf_cert, leaf_key)
    except _Unusable as exc:
        # A missing file is the normal first start; anything else deserves a warning.
        first_start = not Path(cert_file).exists()
        log = logger.info if first_start else logger.warning
        log(
            "TLS server certificate %s (%s); issuing a new one",
            "not found" if first_start else "unusable",
            exc,
        )
        leaf_cert = None
    if leaf_cert is not None and ca_changed:
        logger.warning("TLS server certificate reissued because the CA changed")
        leaf_cert = None
    if leaf_cert is not None:
        try:
            _check_leaf(leaf_cert, ca_cert, moment, hosts)
        except _Unusable as exc:
            level = logging.WARNING if "expired" in str(exc) else logging.INFO
            logger.log(level, "TLS server certificate %s; renewing it (same CA)", exc)
            leaf_cert = None

    if leaf_cert is None or leaf_key is None:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_cert = _issue_leaf(ca_cert, ca_key, leaf_key, dns_names, ips, moment)
        _write(key_file, _key_pem(leaf_key), 0o600)
        _write(cert_file, leaf_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        logger.info(
            "Issued TLS server certificate valid until %s for %s",
            leaf_cert.not_valid_after_utc.isoformat(),
            ", ".join([*dns_names, *(str(ip) for ip in ips)]),
        )

    logger.info("Active CA fingerprint: %s", fingerprint)
    return PkiMaterial(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=leaf_cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_key_pem(leaf_key),
        fingerprint=fingerprint,
    )


# --- CA ------------------------------------------------------------------------------------


def _load_or_create_ca(
    cert_file: Path, key_file: Path, now: dt.datetime
) -> tuple[x509.Certificate, _PrivateKey, bool]:
    """Returns the CA certificate, its key, and whether a new CA was created."""
    old_fingerprint: str | None = None
    try:
        cert = _read_cert(cert_file)
        old_fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        key = _read_key(key_file)
        _check_key_matches(cert, key)
        _check_is_ca(cert)
        _check_ca_time(cert, now)
    except _Unusable as exc:
        reason = str(exc)
    else:
        return cert, key, False

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _create_ca(key, now)
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    new_fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    if old_fingerprint is None and reason.endswith("does not exist"):
        logger.info("created a new TLS root CA (%s)", reason)
    elif old_fingerprint is None:
        logger.warning("TLS root CA unusable (%s); created a new CA", reason)
    else:
        # Drivers pin the CA fingerprint, so this needs operator action: say it plainly.
        logger.warning(
            "TLS root CA %s; created a new CA. The CA fingerprint changed from %s to %s: "
            "every driver must be reconfigured with the new fingerprint",
            reason,
            old_fingerprint,
            new_fingerprint,
        )
    return cert, key, True


def _create_ca(key: _PrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, "QPI Root CA"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _check_is_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise _Unusable("certificate is not a CA (no basic constraints)") from None
    if not constraints.ca:
        raise _Unusable("certificate is not a CA")


def _check_ca_time(cert: x509.Certificate, now: dt.datetime) -> None:
    if cert.not_valid_before_utc > now + _BACKDATE:
        raise _Unusable(f"is not valid before {cert.not_valid_before_utc.isoformat()}")
    if cert.not_valid_after_utc <= now:
        raise _Unusable(f"expired at {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_after_utc - now < CA_RENEW_BEFORE:
        raise _Unusable(f"expires soon ({cert.not_valid_after_utc.isoformat()})")


# --- leaf ----------------------------------------------------------------------------------


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: _PrivateKey,
    key: _PrivateKey,
    dns_names: Sequence[str],
    ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
    now: dt.datetime,
) -> x509.Certificate:
    # The leaf must not outlive its CA, or verifiers reject it before its own expiry.
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, LEAF_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0]),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ip) for ip in ips]
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange needs key encipherment; harmless for EC keys.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _check_leaf(
    leaf: x509.Certificate,
    ca: x509.Certificate,
    now: dt.datetime,
    hosts: Sequence[str],
) -> None:
    """Raises _Unusable with a human-readable reason if the leaf must be reissued."""
    if leaf.issuer != ca.subject:
        raise _Unusable("was not issued by the current CA")
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise _Unusable("was not issued by the current CA") from None
    if leaf.not_valid_before_utc > now + _BACKDATE:
        raise _Unusable(f"is not valid before {leaf.not_valid_before_utc.isoformat()}")
    if leaf.not_valid_after_utc <= now:
        raise _Unusable(f"expired at {leaf.not_valid_after_utc.isoformat()}")
    if leaf.not_valid_after_utc - now < LEAF_RENEW_BEFORE:
        raise _Unusable(f"expires soon ({leaf.not_valid_after_utc.isoformat()})")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise _Unusable("has no subject alternative names") from None
    have_dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    want_dns, want_ips = _split_hosts(hosts)
    missing = [name for name in want_dns if name.lower() not in have_dns]
    missing += [str(ip) for ip in want_ips if ip not in have_ips]
    if missing:
        raise _Unusable(f"does not cover {', '.join(missing)}")


def _split_hosts(
    hosts: Sequence[str],
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """Splits hosts into DNS names and IPs, adding the loopback defaults, without duplicates."""
    dns_names: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for host in [*_DEFAULT_DNS, *_DEFAULT_IPS, *hosts]:
        text = host.strip().rstrip(".")
        if not text:
            continue
        try:
            ip = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            if not text.isascii():
                raise ValueError(
                    f"host {host!r} is not ASCII; pass its IDNA (xn--) form for the certificate"
                ) from None
            if text.lower() not in {name.lower() for name in dns_names}:
                dns_names.append(text)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns_names, ips


# --- files ---------------------------------------------------------------------------------


def _read_cert(path: Path) -> x509.Certificate:
    data = _read(path)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise _Unusable(f"{path} holds no PEM CERTIFICATE block")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise _Unusable(f"{path} is not a parsable certificate ({exc})") from None


def _read_key(path: Path) -> _PrivateKey:
    data = _read(path)
    if b"PRIVATE KEY-----" not in data:
        raise _Unusable(f"{path} holds no PEM PRIVATE KEY block")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise _Unusable(f"{path} is not a parsable unencrypted private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise _Unusable(f"{path} holds an unsupported key type {type(key).__name__}")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _Unusable(f"{path} does not exist") from None
    except OSError as exc:
        raise _Unusable(f"{path} cannot be read ({exc.strerror or exc})") from None


def _check_key_matches(cert: x509.Certificate, key: _PrivateKey) -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise _Unusable("certificate and private key do not match")


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Writes atomically with the final mode set before any byte is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; widen for certificates only after creation, never narrow late.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp_name).replace(path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)
