"""Opaque bearer secrets (API and driver tokens): `qpi_` + 64 hex, stored as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets as _random

TOKEN_PREFIX = "qpi_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_RE = re.compile(r"^qpi_[0-9a-f]{64}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def generate_token() -> str:
    """A new random token (32 bytes of entropy)."""
    return TOKEN_PREFIX + _random.token_hex(32)


def hash_token(raw: str) -> str:
    """SHA-256 hex digest of a raw token; only this is persisted."""
    return hashlib.sha256(raw.encode()).hexdigest()


def is_token_format(raw: str) -> bool:
    """Whether `raw` has the server's token format: `qpi_` + 64 lowercase hex.

    Only such values are ever accepted as API or driver tokens, including tokens a client
    registered itself, so no guessable string can become a credential.
    """
    return bool(_TOKEN_RE.match(raw))


def looks_like_jwt(raw: str) -> bool:
    """Whether `raw` is shaped like a session JWT (three dot-separated parts)."""
    return raw.count(".") == 2


def is_sha256_hex(text: str) -> bool:
    """Whether `text` is a lowercase SHA-256 hex digest."""
    return bool(_SHA256_RE.match(text))


def display_prefix(raw: str) -> str:
    """The first characters of a token, safe to show and log."""
    return raw[:10]
