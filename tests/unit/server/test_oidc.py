"""ID-token validation and PKCE against tokens signed here with real keys."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from qpi.server.security.oidc import (
    IdTokenError,
    SigningKeyNotFoundError,
    pkce_challenge,
    validate_id_token,
)

ISSUER = "https://idp.example"
CLIENT = "qpi"
NONCE = "n-123"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}


def token(key: Any, algorithm: str = "RS256", kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "s1",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "email": "a@example.com",
        **claims,
    }
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def check(raw: str, keys: dict[str, Any]) -> dict[str, Any]:
    return validate_id_token(raw, keys, issuer=ISSUER, client_id=CLIENT, nonce=NONCE)


def test_valid_token(key: rsa.RSAPrivateKey) -> None:
    assert check(token(key), jwks(key))["email"] == "a@example.com"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "other"}, "nonce"),
        ({"aud": "someone-else"}, "another client"),
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": [CLIENT, "x"], "azp": "x"}, "authorized party"),
    ],
)
def test_bad_claims_are_refused(
    key: rsa.RSAPrivateKey, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(IdTokenError, match=reason):
        check(token(key, **claims), jwks(key))


def test_signature_from_another_key_is_refused(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(IdTokenError, match="invalid"):
        check(token(other), jwks(key))


def test_symmetric_and_none_algorithms_are_refused(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(IdTokenError, match="disallowed"):
        check(token("shared-secret-of-32-bytes-or-more!!", algorithm="HS256"), jwks(key))
    unsigned = jwt.encode({"sub": "s1"}, None, algorithm="none")
    with pytest.raises(IdTokenError, match="disallowed"):
        check(unsigned, jwks(key))


def test_unknown_key_id_asks_for_a_refetch(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SigningKeyNotFoundError):
        check(token(key, kid="rotated"), jwks(key))


def test_pkce_challenge_matches_rfc7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize(
    "path", ["//evil.example/", "https://evil.example/", "/\\evil", "x", "/a\r\n"]
)
def test_return_path_must_be_local(path: str) -> None:
    from qpi.server.domain.errors import InvalidArgumentError
    from qpi.server.services.oauth2_service import check_return_path

    with pytest.raises(InvalidArgumentError, match="local path"):
        check_return_path(path)
    assert check_return_path("") == "/dashboard/"
    assert check_return_path("/dashboard/?tab=1") == "/dashboard/?tab=1"
