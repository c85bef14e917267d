"""E-mail/password login: throttled, with the password checked in the hashing pool."""

from __future__ import annotations

from datetime import datetime

from qpi.server.domain.errors import UnauthenticatedError
from qpi.server.security.passwords import PasswordWork, hash_password
from qpi.server.security.throttle import LoginThrottle
from qpi.server.services.auth_service import AuthService, login_account
from qpi.server.services.database import Database
from qpi.server.store.tables import UserRow

_DUMMY_HASH = hash_password("qpi-timing-equaliser")
"""Verified against when the account does not exist, so both cases cost the same."""


class LoginService:
    """Turns an e-mail and password into a session, at a bounded rate of failures."""

    def __init__(
        self, db: Database, auth: AuthService, throttle: LoginThrottle, passwords: PasswordWork
    ) -> None:
        self._db = db
        self._auth = auth
        self._throttle = throttle
        self._passwords = passwords

    async def login(
        self, email: str, password: str, superuser: bool, address: str
    ) -> tuple[str, UserRow, datetime]:
        """Checks the throttle, then the password, then issues a session token.

        Raises:
            ResourceExhaustedError: ``TOO_MANY_LOGIN_ATTEMPTS`` (before any password work).
            UnauthenticatedError: ``INVALID_CREDENTIALS``.
        """
        account = login_account(email)
        self._throttle.check(account, address)
        user = await self._db.run(self._auth.find_login, email, password)
        stored = user.password_hash if user is not None else _DUMMY_HASH
        matches = await self._passwords.verify(stored, password)  # same work either way
        if user is None or not matches:
            self._throttle.failed(account, address)
            raise UnauthenticatedError("INVALID_CREDENTIALS", "Invalid credentials.")
        return self._auth.session_for(user, superuser)
