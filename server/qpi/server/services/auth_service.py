"""Credential checks: session tokens, API tokens, driver tokens, logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, UnauthenticatedError
from qpi.server.security.sessions import SessionSigner, SessionTokenError
from qpi.server.security.tokens import hash_token, is_token_format, looks_like_jwt
from qpi.server.services.database import Database
from qpi.server.services.principal import Principal
from qpi.server.store.tables import ApiTokenRow, DriverRow, ServerSecretRow, UserRow

_SESSION_SECRET = "session_signing_key"  # noqa: S105 - the row name, not the key


@dataclass(frozen=True)
class DriverIdentity:
    """An authenticated driver."""

    driver_id: str
    qpu_id: str
    name: str
    kind: str
    enabled: bool


def password_stamp(password_hash: str) -> str:
    """A short fragment of the hash; sessions carry it so a new password revokes them."""
    return password_hash[-12:]


class AuthService:
    """Turns credentials into principals."""

    def __init__(
        self, db: Database, clock: Clock, session_ttl: float, password_login: bool
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = session_ttl
        self._password_login = password_login
        self._signer = SessionSigner(self._load_or_create_secret())

    def _load_or_create_secret(self) -> str:
        # Kept in the database so every replica signs and verifies with the same key.
        with self._db.session() as s:
            row = s.get(ServerSecretRow, _SESSION_SECRET)
            if row is None:
                row = ServerSecretRow(name=_SESSION_SECRET, value=secrets.token_hex(32))
                s.add(row)
                s.commit()
            return row.value

    def authenticate(self, token: str) -> Principal:
        """Resolves a bearer token (API token or session token) to a principal."""
        if not token:
            raise UnauthenticatedError("UNAUTHENTICATED", "Authentication required.")
        now = self._clock.now()
        if not is_token_format(token) and not looks_like_jwt(token):
            raise UnauthenticatedError(
                "TOKEN_INVALID",
                "Malformed credential: API tokens are qpi_ followed by 64 lowercase hex "
                "characters, session tokens are JWTs.",
            )
        with self._db.session() as s:
            if is_token_format(token):
                return self._from_api_token(s, token, now)
            try:
                claims = self._signer.verify(token, now)
            except SessionTokenError as exc:
                reason = "TOKEN_EXPIRED" if exc.expired else "TOKEN_INVALID"
                raise UnauthenticatedError(reason, str(exc)) from exc
            user = s.get(UserRow, claims.user_id)
            if user is None or password_stamp(user.password_hash) != claims.password_stamp:
                raise UnauthenticatedError("TOKEN_INVALID", "The session token was revoked.")
            return Principal(user.id, user.email, user.is_superuser)

    def _from_api_token(self, s: object, token: str, now: datetime) -> Principal:
        from sqlmodel import Session

        assert isinstance(s, Session)
        row = s.exec(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token))).first()
        if row is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The API token is invalid or was revoked.")
        if row.expires_at is not None and row.expires_at <= now:
            raise UnauthenticatedError("TOKEN_EXPIRED", "The API token has expired.")
        user = s.get(UserRow, row.user_id)
        if user is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The API token's owner no longer exists.")
        return Principal(user.id, user.email, user.is_superuser)

    def authenticate_driver(self, token: str) -> DriverIdentity:
        """Resolves a driver access token."""
        if not token:
            raise UnauthenticatedError("UNAUTHENTICATED", "A driver access token is required.")
        if not is_token_format(token):
            raise UnauthenticatedError("TOKEN_INVALID", "Invalid access token.")
        with self._db.session() as s:
            row = s.exec(select(DriverRow).where(DriverRow.token_hash == hash_token(token))).first()
            if row is None:
                raise UnauthenticatedError("TOKEN_INVALID", "Invalid access token.")
            return DriverIdentity(row.id, row.qpu_id, row.name, row.kind, row.enabled)

    def refresh(self, who: Principal) -> tuple[str, UserRow, datetime]:
        """A new session token for an already authenticated caller."""
        return self.issue_for(who.user_id)

    def issue_for(self, user_id: str) -> tuple[str, UserRow, datetime]:
        """A session token for a user another credential already proved (e.g. OAuth2)."""
        with self._db.session() as s:
            user = s.get(UserRow, user_id)
        if user is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The account no longer exists.")
        token, expires = self._signer.issue(
            user.id, password_stamp(user.password_hash), self._clock.now(), self._ttl
        )
        return token, user, expires

    def find_login(self, email: str, password: str) -> UserRow | None:
        """The account a login names (None if there is none); the password is checked
        elsewhere, off the database thread."""
        if not email or not password:
            raise InvalidArgumentError(
                "INVALID_FIELD", "Both email and password are required.", field="email"
            )
        with self._db.session() as s:
            return s.exec(select(UserRow).where(UserRow.email == login_account(email))).first()

    def session_for(self, user: UserRow, superuser: bool) -> tuple[str, UserRow, datetime]:
        """A session token for a user whose password was verified."""
        if superuser and not user.is_superuser:
            raise UnauthenticatedError("INVALID_CREDENTIALS", "Invalid credentials.")
        if not user.is_superuser and not self._password_login:
            raise UnauthenticatedError(
                "INVALID_CREDENTIALS", "Password login is disabled on this server."
            )
        token, expires = self._signer.issue(
            user.id, password_stamp(user.password_hash), self._clock.now(), self._ttl
        )
        return token, user, expires


def login_account(email: str) -> str:
    """The normalised account key of a login e-mail (also the throttle key)."""
    return email.strip().lower()
