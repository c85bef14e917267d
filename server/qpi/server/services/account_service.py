"""Users, balances and API tokens."""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from qpi.server.domain.listing import ListQuery, Total
from qpi.server.domain.models import ApiToken, User
from qpi.server.security.passwords import hash_password
from qpi.server.security.tokens import (
    display_prefix,
    generate_token,
    hash_token,
    is_sha256_hex,
    is_token_format,
)
from qpi.server.services.events import CREDENTIALS_TOPIC, EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.account_listing import AccountListing
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.base import KEEP, DuplicateKeyError, Keep

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
__all__ = ["CREDENTIALS_TOPIC", "AccountService"]
"""Event topic naming a user whose credentials were revoked (payload: the user id)."""


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise InvalidArgumentError(
            "INVALID_FIELD",
            f"'{email}' is not a valid e-mail address.",
            field="email",
            metadata={"email": email},
        )
    return email


def check_password(password: str) -> None:
    """Raise unless ``password`` is acceptable (checked before any hashing work).

    Raises:
        InvalidArgumentError: ``INVALID_FIELD`` naming ``password``.
    """
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidArgumentError(
            "INVALID_FIELD",
            f"The password must have between {MIN_PASSWORD_LENGTH} and "
            f"{MAX_PASSWORD_LENGTH} characters.",
            field="password",
            metadata={"min_length": MIN_PASSWORD_LENGTH, "max_length": MAX_PASSWORD_LENGTH},
        )


def _check_balance(seconds: float) -> None:
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgumentError(
            "INVALID_FIELD", "qpu_seconds must be a finite number ≥ 0.", field="qpu_seconds"
        )


class AccountService:
    """Accounts and credentials."""

    def __init__(
        self,
        accounts: AccountRepository,
        clock: Clock,
        allow_signup: bool,
        events: EventBus | None = None,
        listing: AccountListing | None = None,
    ) -> None:
        self._accounts = accounts
        self._listing = listing
        self._clock = clock
        self._allow_signup = allow_signup
        self._events = events

    def _revoked(self, user_id: str) -> None:
        # Open streams of this user re-check their credentials at once (not in 30 s).
        if self._events is not None:
            self._events.publish(CREDENTIALS_TOPIC, user_id)

    def _balance_changed(self) -> None:
        # Jobs held back for lack of balance may be dispatchable now.
        if self._events is not None:
            self._events.publish("dispatch", "*")

    # -- users ------------------------------------------------------------------------

    def get_user(self, who: Principal, user_id: str) -> User:
        """One user; users may only read themselves."""
        user = self._accounts.get_user(user_id) if who.can_see(user_id) else None
        if user is None:
            raise _user_not_found(user_id)
        return user

    def list_users(self, who: Principal, offset: int, limit: int) -> tuple[list[User], int]:
        """All users for administrators; only oneself otherwise."""
        return self._accounts.list_users(None if who.is_superuser else who.user_id, offset, limit)

    def query_users(self, who: Principal, query: ListQuery) -> tuple[list[User], Total | None]:
        """One page of visible users (administrators: all; others: themselves) matching an
        arbitrary filter and order, run in the database."""
        if self._listing is None:
            raise RuntimeError("AccountService was built without a listing")
        only = None if who.is_superuser else who.user_id
        return self._listing.list_users_query(only, query, self._clock.now())

    def query_api_tokens(
        self, who: Principal, query: ListQuery, *, all_users: bool
    ) -> tuple[list[ApiToken], Total | None]:
        """One page of own tokens (administrators: optionally all) matching a query."""
        if all_users:
            who.require_admin()
        if self._listing is None:
            raise RuntimeError("AccountService was built without a listing")
        owner = None if all_users else who.user_id
        return self._listing.list_tokens_query(owner, query, self._clock.now())

    def emails(self, user_ids: Collection[str]) -> dict[str, str]:
        """E-mails by user id (for display fields)."""
        return self._accounts.emails(user_ids)

    def create_user(
        self,
        who: Principal | None,
        email: str,
        password: str,
        name: str,
        qpu_seconds: float,
        password_hash: str | None = None,
    ) -> User:
        """Administrators create anyone; others only when self-registration is enabled.

        ``password_hash`` is ``password`` already hashed by the caller (off this thread).
        """
        is_admin = who is not None and who.is_superuser
        if not is_admin:
            if not self._allow_signup:
                raise PermissionDeniedError(
                    "SIGNUP_DISABLED", "Self-registration is disabled on this server."
                )
            qpu_seconds = 0.0  # balances change only by administrator action
        check_password(password)
        _check_balance(qpu_seconds)
        email = _normalise_email(email)
        try:
            return self._accounts.insert_user(
                email, name.strip()[:200], password_hash or hash_password(password), qpu_seconds
            )
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(
                "EMAIL_TAKEN",
                f"A user with e-mail {email} already exists.",
                metadata={"email": email},
            ) from exc

    def upsert_superuser(self, email: str, password: str) -> User:
        """Creates or updates an administrator (used by `qpi superuser upsert`)."""
        check_password(password)
        email = _normalise_email(email)
        return self._accounts.upsert_superuser(email, hash_password(password), self._clock.now())

    def update_user(
        self,
        who: Principal,
        user_id: str,
        fields: dict[str, object],
        password_hash: str | None = None,
    ) -> User:
        """Applies `fields` (name, password, qpu_seconds); balances are admin-only.

        ``password_hash`` is the new password already hashed by the caller.
        """
        allowed = {"name", "password", "qpu_seconds"}
        unknown = set(fields) - allowed
        if unknown:
            raise InvalidArgumentError(
                "INVALID_FIELD",
                f"Cannot update field(s): {', '.join(sorted(unknown))}.",
                field=sorted(unknown)[0],
            )
        if "qpu_seconds" in fields:
            who.require_admin()
        self.get_user(who, user_id)
        name = str(fields["name"]).strip()[:200] if "name" in fields else None
        new_hash = None
        if "password" in fields:
            password = str(fields["password"])
            check_password(password)
            new_hash = password_hash or hash_password(password)
        balance = None
        if "qpu_seconds" in fields:
            value = fields["qpu_seconds"]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidArgumentError(
                    "INVALID_FIELD", "qpu_seconds must be a number.", field="qpu_seconds"
                )
            _check_balance(float(value))
            balance = float(value)
        user = self._accounts.update_user(
            user_id,
            self._clock.now(),
            name=name,
            password_hash=new_hash,
            qpu_seconds=balance,
        )
        if user is None:
            raise _user_not_found(user_id)
        if "password" in fields:
            self._revoked(user_id)
        if "qpu_seconds" in fields:
            self._balance_changed()
        return user

    def delete_user(self, who: Principal, user_id: str) -> None:
        """Administrators delete a user and everything they own."""
        who.require_admin()
        if not self._accounts.delete_user(user_id):
            raise _user_not_found(user_id)
        self._revoked(user_id)

    # -- API tokens -------------------------------------------------------------------

    def create_api_token(
        self,
        who: Principal,
        name: str,
        expires_at: datetime | None,
        token_sha256: str = "",
        token: str = "",
    ) -> tuple[ApiToken, str]:
        """Creates a token; returns its metadata and the raw value (shown once).

        A caller may register a token it generated itself, raw (`token`, which must have
        the server's format) or as the SHA-256 digest of one (`token_sha256`); the raw value
        is then not returned (""). Only `qpi_` + 64 hex tokens ever authenticate.
        """
        if expires_at is not None and expires_at <= self._clock.now():
            raise InvalidArgumentError(
                "INVALID_FIELD", "expire_time must be in the future.", field="expire_time"
            )
        if token and token_sha256:
            raise InvalidArgumentError(
                "INVALID_FIELD", "Send either token or token_sha256, not both.", field="token"
            )
        if token:
            if not is_token_format(token):
                raise InvalidArgumentError(
                    "INVALID_FIELD",
                    "token must have the server's token format: qpi_ followed by 64 "
                    "lowercase hex characters.",
                    field="token",
                )
            raw, digest, prefix = "", hash_token(token), display_prefix(token)
        elif token_sha256:
            if not is_sha256_hex(token_sha256):
                raise InvalidArgumentError(
                    "INVALID_FIELD",
                    "token_sha256 must be a SHA-256 digest: 64 lowercase hex characters.",
                    field="token_sha256",
                )
            raw, digest, prefix = "", token_sha256, "sha256:" + token_sha256[:3]
        else:
            raw = generate_token()
            digest, prefix = hash_token(raw), display_prefix(raw)
        try:
            created = self._accounts.insert_api_token(
                who.user_id, digest, prefix, name.strip()[:200], expires_at
            )
        except DuplicateKeyError as exc:
            raise AlreadyExistsError(
                "TOKEN_EXISTS", "A token with this SHA-256 digest is already registered."
            ) from exc
        return created, raw

    def get_api_token(self, who: Principal, token_id: str) -> ApiToken:
        """Token metadata (owner or administrator)."""
        token = self._accounts.get_api_token(token_id)
        if token is None or not who.can_see(token.user_id):
            raise _token_not_found(token_id)
        return token

    def list_api_tokens(
        self, who: Principal, all_users: bool, offset: int, limit: int
    ) -> tuple[list[ApiToken], int]:
        """Own tokens (administrators: optionally all), newest first."""
        if all_users:
            who.require_admin()
        return self._accounts.list_api_tokens(None if all_users else who.user_id, offset, limit)

    def update_api_token(
        self, who: Principal, token_id: str, fields: dict[str, object]
    ) -> ApiToken:
        """Renames a token or changes its expiry."""
        self.get_api_token(who, token_id)
        name = str(fields["name"]).strip()[:200] if "name" in fields else None
        expires_at: datetime | None | Keep = KEEP
        if "expire_time" in fields:
            value = fields["expire_time"]
            if value is not None and not isinstance(value, datetime):
                raise InvalidArgumentError(
                    "INVALID_FIELD", "expire_time must be a timestamp.", field="expire_time"
                )
            expires_at = value
        token = self._accounts.update_api_token(token_id, name=name, expires_at=expires_at)
        if token is None:
            raise _token_not_found(token_id)
        if "expire_time" in fields:
            self._revoked(token.user_id)  # an expiry moved into the past ends its streams
        return token

    def delete_api_token(self, who: Principal, token_id: str) -> None:
        """Revokes a token."""
        owner = self.get_api_token(who, token_id).user_id
        self._accounts.delete_api_token(token_id)
        self._revoked(owner)


def _user_not_found(user_id: str) -> NotFoundError:
    return NotFoundError("USER_NOT_FOUND", f"User {user_id} not found.", metadata={"id": user_id})


def _token_not_found(token_id: str) -> NotFoundError:
    return NotFoundError("TOKEN_NOT_FOUND", "Token not found.", metadata={"id": token_id})
