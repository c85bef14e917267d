"""Signed session tokens (HS256 JWT) issued at login."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

_ALGORITHM = "HS256"
_AUDIENCE = "qpi"


@dataclass(frozen=True)
class SessionClaims:
    """What a valid session token says."""

    user_id: str
    expires_at: datetime
    password_stamp: str


class SessionTokenError(Exception):
    """The token is malformed, has a bad signature, or expired (`expired` tells which)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class SessionSigner:
    """Issues and verifies session tokens with one shared secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def issue(
        self, user_id: str, password_stamp: str, now: datetime, ttl: float
    ) -> tuple[str, datetime]:
        """Returns a token for `user_id` and its expiry.

        `password_stamp` (a fragment of the password hash) invalidates every session when
        the password changes.
        """
        expires = now + timedelta(seconds=ttl)
        claims = {
            "sub": user_id,
            "aud": _AUDIENCE,
            "iat": now,
            "exp": expires,
            "pst": password_stamp,
            "jti": secrets.token_hex(8),  # every token is distinct, even within one second
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM), expires

    def verify(self, token: str, now: datetime) -> SessionClaims:
        """Checks signature and expiry against `now`; raises SessionTokenError."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise SessionTokenError("The session token is invalid.") from exc
        expires = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
        if expires <= now:
            raise SessionTokenError("The session token has expired.", expired=True)
        return SessionClaims(str(claims["sub"]), expires, str(claims.get("pst", "")))
