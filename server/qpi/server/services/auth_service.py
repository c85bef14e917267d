"""Credential checks: session tokens, API tokens, driver tokens, logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, UnauthenticatedError
from qpi.server.domain.models import User, UserCredentials
from qpi.server.security.sessions import SessionSigner, SessionTokenError
from qpi.server.security.tokens import hash_token, is_token_format, looks_like_jwt
from qpi.server.services.principal import Principal
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.qpus import QpuRepository

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
        self,
        accounts: AccountRepository,
        qpus: QpuRepository,
        clock: Clock,
        session_ttl: float,
        password_login: bool,
    ) -> None:
        self._accounts = accounts
        self._qpus = qpus
        self._clock = clock
        self._ttl = session_ttl
        self._password_login = password_login
        # Kept in the database so every replica signs and verifies with the same key.
        self._signer = SessionSigner(accounts.secret(_SESSION_SECRET, secrets.token_hex(32)))

    def authenticate(self, token: str) -> Principal:
        """Resolves a bearer token (API token or session token) to a principal."""
        return self.authenticate_until(token)[0]

    def authenticate_until(self, token: str) -> tuple[Principal, datetime | None]:
        """Like :meth:`authenticate`, with when the credential itself expires (None: never),
        so a cache of the answer never outlives the credential."""
        if not token:
            raise UnauthenticatedError("UNAUTHENTICATED", "Authentication required.")
        now = self._clock.now()
        if not is_token_format(token) and not looks_like_jwt(token):
            raise UnauthenticatedError(
                "TOKEN_INVALID",
                "Malformed credential: API tokens are qpi_ followed by 64 lowercase hex "
                "characters, session tokens are JWTs.",
            )
        if is_token_format(token):
            return self._from_api_token(token, now)
        try:
            claims = self._signer.verify(token, now)
        except SessionTokenError as exc:
            reason = "TOKEN_EXPIRED" if exc.expired else "TOKEN_INVALID"
            raise UnauthenticatedError(reason, str(exc)) from exc
        found = self._accounts.credentials(claims.user_id)
        if found is None or password_stamp(found.password_hash) != claims.password_stamp:
            raise UnauthenticatedError("TOKEN_INVALID", "The session token was revoked.")
        return _principal(found.user), claims.expires_at

    def _from_api_token(self, token: str, now: datetime) -> tuple[Principal, datetime | None]:
        found = self._accounts.api_token_owner(hash_token(token))
        if found is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The API token is invalid or was revoked.")
        api_token, owner = found
        if api_token.expires_at is not None and api_token.expires_at <= now:
            raise UnauthenticatedError("TOKEN_EXPIRED", "The API token has expired.")
        if owner is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The API token's owner no longer exists.")
        return _principal(owner), api_token.expires_at

    def authenticate_driver(self, token: str) -> DriverIdentity:
        """Resolves a driver access token."""
        if not token:
            raise UnauthenticatedError("UNAUTHENTICATED", "A driver access token is required.")
        if not is_token_format(token):
            raise UnauthenticatedError("TOKEN_INVALID", "Invalid access token.")
        driver = self._qpus.driver_by_token(hash_token(token))
        if driver is None:
            raise UnauthenticatedError("TOKEN_INVALID", "Invalid access token.")
        return DriverIdentity(driver.id, driver.qpu_id, driver.name, driver.kind, driver.enabled)

    def refresh(self, who: Principal) -> tuple[str, User, datetime]:
        """A new session token for an already authenticated caller."""
        return self.issue_for(who.user_id)

    def issue_for(self, user_id: str) -> tuple[str, User, datetime]:
        """A session token for a user another credential already proved (e.g. OAuth2)."""
        found = self._accounts.credentials(user_id)
        if found is None:
            raise UnauthenticatedError("TOKEN_INVALID", "The account no longer exists.")
        token, expires = self._signer.issue(
            found.user.id, password_stamp(found.password_hash), self._clock.now(), self._ttl
        )
        return token, found.user, expires

    def find_login(self, email: str, password: str) -> UserCredentials | None:
        """The account a login names (None if there is none); the password is checked
        elsewhere, off the database thread."""
        if not email or not password:
            raise InvalidArgumentError(
                "INVALID_FIELD", "Both email and password are required.", field="email"
            )
        return self._accounts.credentials_by_email(login_account(email))

    def session_for(self, found: UserCredentials, superuser: bool) -> tuple[str, User, datetime]:
        """A session token for a user whose password was verified."""
        user = found.user
        if superuser and not user.is_superuser:
            raise UnauthenticatedError("INVALID_CREDENTIALS", "Invalid credentials.")
        if not user.is_superuser and not self._password_login:
            raise UnauthenticatedError(
                "INVALID_CREDENTIALS", "Password login is disabled on this server."
            )
        token, expires = self._signer.issue(
            user.id, password_stamp(found.password_hash), self._clock.now(), self._ttl
        )
        return token, user, expires


def _principal(user: User) -> Principal:
    return Principal(user.id, user.email, user.is_superuser)


def login_account(email: str) -> str:
    """The normalised account key of a login e-mail (also the throttle key)."""
    return email.strip().lower()
