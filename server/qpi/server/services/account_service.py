"""Users, balances and API tokens."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from qpi.server.security.passwords import hash_password
from qpi.server.security.tokens import (
    display_prefix,
    generate_token,
    hash_token,
    is_sha256_hex,
    is_token_format,
)
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.tables import ApiTokenRow, UserRow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
CREDENTIALS_TOPIC = "credentials"
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
        self, db: Database, clock: Clock, allow_signup: bool, events: EventBus | None = None
    ) -> None:
        self._db = db
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

    def get_user(self, who: Principal, user_id: str) -> UserRow:
        """One user; users may only read themselves."""
        if not who.can_see(user_id):
            raise NotFoundError(
                "USER_NOT_FOUND", f"User {user_id} not found.", metadata={"id": user_id}
            )
        with self._db.session() as s:
            user = s.get(UserRow, user_id)
        if user is None:
            raise NotFoundError(
                "USER_NOT_FOUND", f"User {user_id} not found.", metadata={"id": user_id}
            )
        return user

    def list_users(self, who: Principal, offset: int, limit: int) -> tuple[list[UserRow], int]:
        """All users for administrators; only oneself otherwise."""
        with self._db.session() as s:
            query = select(UserRow)
            if not who.is_superuser:
                query = query.where(UserRow.id == who.user_id)
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(col(UserRow.email)).offset(offset).limit(limit)).all()
        return list(rows), int(total)

    def create_user(
        self,
        who: Principal | None,
        email: str,
        password: str,
        name: str,
        qpu_seconds: float,
        password_hash: str | None = None,
    ) -> UserRow:
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
        user = UserRow(
            email=_normalise_email(email),
            name=name.strip()[:200],
            password_hash=password_hash or hash_password(password),
            qpu_seconds=qpu_seconds,
        )
        return self._insert_user(user)

    def _insert_user(self, user: UserRow) -> UserRow:
        try:
            with self._db.session() as s:
                s.add(user)
                s.commit()
        except IntegrityError as exc:
            raise AlreadyExistsError(
                "EMAIL_TAKEN",
                f"A user with e-mail {user.email} already exists.",
                metadata={"email": user.email},
            ) from exc
        return user

    def upsert_superuser(self, email: str, password: str) -> UserRow:
        """Creates or updates an administrator (used by `qpi superuser upsert`)."""
        check_password(password)
        email = _normalise_email(email)
        with self._db.session() as s:
            user = s.exec(select(UserRow).where(UserRow.email == email)).first()
            if user is None:
                user = UserRow(email=email, password_hash=hash_password(password))
            else:
                user.password_hash = hash_password(password)
                user.updated = self._clock.now()
            user.is_superuser = True
            s.add(user)
            s.commit()
            return user

    def update_user(
        self,
        who: Principal,
        user_id: str,
        fields: dict[str, object],
        password_hash: str | None = None,
    ) -> UserRow:
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
        user = self.get_user(who, user_id)
        with self._db.session() as s:
            user = s.get(UserRow, user_id) or user
            if "name" in fields:
                user.name = str(fields["name"]).strip()[:200]
            if "password" in fields:
                password = str(fields["password"])
                check_password(password)
                user.password_hash = password_hash or hash_password(password)
            if "qpu_seconds" in fields:
                value = fields["qpu_seconds"]
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise InvalidArgumentError(
                        "INVALID_FIELD", "qpu_seconds must be a number.", field="qpu_seconds"
                    )
                _check_balance(float(value))
                user.qpu_seconds = float(value)
            user.updated = self._clock.now()
            s.add(user)
            s.commit()
        if "password" in fields:
            self._revoked(user_id)
        if "qpu_seconds" in fields:
            self._balance_changed()
        return user

    def delete_user(self, who: Principal, user_id: str) -> None:
        """Administrators delete a user and everything they own."""
        who.require_admin()
        with self._db.session() as s:
            user = s.get(UserRow, user_id)
            if user is None:
                raise NotFoundError(
                    "USER_NOT_FOUND", f"User {user_id} not found.", metadata={"id": user_id}
                )
            s.delete(user)
            s.commit()
        self._revoked(user_id)

    # -- API tokens -------------------------------------------------------------------

    def create_api_token(
        self,
        who: Principal,
        name: str,
        expires_at: datetime | None,
        token_sha256: str = "",
        token: str = "",
    ) -> tuple[ApiTokenRow, str]:
        """Creates a token; returns its row and the raw value (shown once).

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
        row = ApiTokenRow(
            user_id=who.user_id,
            token_hash=digest,
            prefix=prefix,
            name=name.strip()[:200],
            expires_at=expires_at,
        )
        with self._db.session() as s:
            if s.exec(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).first():
                raise AlreadyExistsError(
                    "TOKEN_EXISTS", "A token with this SHA-256 digest is already registered."
                )
            s.add(row)
            s.commit()
        return row, raw

    def _token(self, who: Principal, token_id: str) -> ApiTokenRow:
        with self._db.session() as s:
            row = s.get(ApiTokenRow, token_id)
        if row is None or not who.can_see(row.user_id):
            raise NotFoundError("TOKEN_NOT_FOUND", "Token not found.", metadata={"id": token_id})
        return row

    def get_api_token(self, who: Principal, token_id: str) -> ApiTokenRow:
        """Token metadata (owner or administrator)."""
        return self._token(who, token_id)

    def list_api_tokens(
        self, who: Principal, all_users: bool, offset: int, limit: int
    ) -> tuple[list[ApiTokenRow], int]:
        """Own tokens (administrators: optionally all), newest first."""
        if all_users:
            who.require_admin()
        with self._db.session() as s:
            query = select(ApiTokenRow)
            if not all_users:
                query = query.where(ApiTokenRow.user_id == who.user_id)
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(col(ApiTokenRow.created).desc()).offset(offset).limit(limit)
            ).all()
        return list(rows), int(total)

    def update_api_token(
        self, who: Principal, token_id: str, fields: dict[str, object]
    ) -> ApiTokenRow:
        """Renames a token or changes its expiry."""
        row = self._token(who, token_id)
        with self._db.session() as s:
            row = s.get(ApiTokenRow, token_id) or row
            if "name" in fields:
                row.name = str(fields["name"]).strip()[:200]
            if "expire_time" in fields:
                value = fields["expire_time"]
                if value is not None and not isinstance(value, datetime):
                    raise InvalidArgumentError(
                        "INVALID_FIELD", "expire_time must be a timestamp.", field="expire_time"
                    )
                row.expires_at = value
            s.add(row)
            s.commit()
        if "expire_time" in fields:
            self._revoked(row.user_id)  # an expiry moved into the past ends its streams
        return row

    def delete_api_token(self, who: Principal, token_id: str) -> None:
        """Revokes a token."""
        owner = self._token(who, token_id).user_id
        with self._db.session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is not None:
                s.delete(row)
                s.commit()
        self._revoked(owner)


def emails(db: Database, user_ids: set[str]) -> dict[str, str]:
    """E-mails by user id (for display fields)."""
    with db.session() as s:
        return dict(
            s.exec(select(UserRow.id, UserRow.email).where(col(UserRow.id).in_(user_ids))).all()
        )
