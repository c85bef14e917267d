"""OpenID Connect ID-token validation and PKCE (pure functions over PyJWT).

An ID token is accepted only when its signature verifies with a key from the provider's
JWKS (asymmetric algorithms only: never ``none`` or a shared-secret HMAC), and its
issuer, audience, expiry, issue time and nonce are right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import jwt

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 60
"""Clock skew tolerated between this server and the provider."""


class IdTokenError(ValueError):
    """The ID token is invalid; the message says why (safe to show)."""


class SigningKeyNotFoundError(IdTokenError):
    """No JWKS key matches the token's ``kid``: the caller should refetch the JWKS once."""


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_id_token(
    token: str, jwks: dict[str, Any], *, issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """Verify an ID token and return its claims.

    Args:
        token: The compact JWS from the token response.
        jwks: The provider's JSON Web Key Set.
        issuer: The expected ``iss`` (the configured issuer).
        client_id: The expected audience.
        nonce: The nonce sent with the authorization request.

    Returns:
        The verified claims.

    Raises:
        SigningKeyNotFoundError: No key of the JWKS matches the token.
        IdTokenError: Any other problem (bad signature, issuer, audience, expiry, nonce).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdTokenError(f"the ID token is malformed ({exc})") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise IdTokenError(f"the ID token uses the disallowed algorithm {algorithm!r}")
    key = _signing_key(jwks, header.get("kid"), str(algorithm))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[str(algorithm)],
            audience=client_id,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise IdTokenError("the ID token has expired") from None
    except jwt.InvalidAudienceError:
        raise IdTokenError("the ID token was issued for another client") from None
    except jwt.InvalidIssuerError:
        raise IdTokenError("the ID token was issued by another issuer") from None
    except jwt.PyJWTError as exc:
        raise IdTokenError(f"the ID token is invalid ({exc})") from None
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise IdTokenError("the ID token's nonce does not match this sign-in")
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("the ID token's authorized party is another client")
    return claims


def _signing_key(jwks: dict[str, Any], kid: object, algorithm: str) -> jwt.PyJWK:
    try:
        keyset = jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise SigningKeyNotFoundError(f"the provider's key set is unusable ({exc})") from None
    candidates = [
        key
        for key in keyset.keys
        if (kid is None or key.key_id == kid) and key.public_key_use in (None, "sig")
    ]
    if not candidates:
        raise SigningKeyNotFoundError(f"no signing key {kid!r} in the provider's key set")
    matching = [key for key in candidates if key.algorithm_name == algorithm]
    return (matching or candidates)[0]
