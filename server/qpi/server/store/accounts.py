"""Accounts: users, API tokens and server-wide secrets (the session signing key)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from qpi.server.domain.models import ApiToken, User, UserCredentials
from qpi.server.store.account_rows import TOKEN_COLUMNS, USER_COLUMNS, token_of_row, user_of_row
from qpi.server.store.base import KEEP, DuplicateKeyError, Keep, SqlRepository
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import API_TOKENS, USERS, ApiTokenRow, ServerSecretRow, UserRow


class AccountRepository(Protocol):
    """Users, their API tokens and the server's secrets."""

    def get_user(self, user_id: str) -> User | None:
        """One user."""
        ...

    def credentials(self, user_id: str) -> UserCredentials | None:
        """A user with its password hash (session checks)."""
        ...

    def credentials_by_email(self, email: str) -> UserCredentials | None:
        """A user by (normalised) e-mail with its password hash (login)."""
        ...

    def api_token_owner(self, token_hash: str) -> tuple[ApiToken, User | None] | None:
        """The token with that hash and its owner (None if the owner is gone)."""
        ...

    def list_users(
        self, only_user_id: str | None, offset: int, limit: int
    ) -> tuple[list[User], int]:
        """Users by e-mail (only one when `only_user_id`), with the total count."""
        ...

    def emails(self, user_ids: Collection[str]) -> dict[str, str]:
        """E-mails by user id."""
        ...

    def insert_user(self, email: str, name: str, password_hash: str, qpu_seconds: float) -> User:
        """Adds a user; DuplicateKeyError if the e-mail is taken."""
        ...

    def upsert_superuser(self, email: str, password_hash: str, now: datetime) -> User:
        """Creates an administrator or promotes and re-keys an existing user."""
        ...

    def update_user(
        self,
        user_id: str,
        now: datetime,
        *,
        name: str | None = None,
        password_hash: str | None = None,
        qpu_seconds: float | None = None,
    ) -> User | None:
        """Changes the given fields (None: unchanged); None if the user is gone."""
        ...

    def delete_user(self, user_id: str) -> bool:
        """Deletes a user and everything they own; False if there was none."""
        ...

    def insert_api_token(
        self, user_id: str, token_hash: str, prefix: str, name: str, expires_at: datetime | None
    ) -> ApiToken:
        """Adds a token; DuplicateKeyError if that hash is already registered."""
        ...

    def get_api_token(self, token_id: str) -> ApiToken | None:
        """Token metadata."""
        ...

    def list_api_tokens(
        self, user_id: str | None, offset: int, limit: int
    ) -> tuple[list[ApiToken], int]:
        """Tokens newest first (one user's, or everyone's for None), with the total."""
        ...

    def update_api_token(
        self, token_id: str, *, name: str | None = None, expires_at: datetime | None | Keep = KEEP
    ) -> ApiToken | None:
        """Renames a token or changes its expiry; None if it is gone."""
        ...

    def delete_api_token(self, token_id: str) -> bool:
        """Revokes a token; False if there was none."""
        ...

    def secret(self, name: str, initial: str) -> str:
        """A server-wide secret, stored as `initial` on first use."""
        ...


def to_user(row: UserRow) -> User:
    """The domain record of a user row."""
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        is_superuser=row.is_superuser,
        qpu_seconds=row.qpu_seconds,
        created=row.created,
        updated=row.updated,
    )


def _credentials(row: UserRow) -> UserCredentials:
    return UserCredentials(to_user(row), row.password_hash)


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        prefix=row.prefix,
        name=row.name,
        expires_at=row.expires_at,
        created=row.created,
    )


# Authentication reads (a cache miss: once a second per credential) as one prepared
# statement each: on PostgreSQL one round trip in autocommit, instead of the ORM's
# BEGIN, SELECT, SELECT and ROLLBACK; on SQLite a fraction of the database thread's time.
_CREDENTIALS = Prepared(
    core_select(*USER_COLUMNS, USERS.c.password_hash).where(USERS.c.id == bindparam("id"))
)
_TOKEN_OWNER = Prepared(
    core_select(*TOKEN_COLUMNS, *USER_COLUMNS)
    .select_from(API_TOKENS.outerjoin(USERS, USERS.c.id == API_TOKENS.c.user_id))
    .where(API_TOKENS.c.token_hash == bindparam("token_hash"))
)


class SqlAccountRepository(SqlRepository):
    """AccountRepository on SQLite or PostgreSQL."""

    def get_user(self, user_id: str) -> User | None:
        with self._session() as s:
            row = s.get(UserRow, user_id)
        return to_user(row) if row else None

    def credentials(self, user_id: str) -> UserCredentials | None:
        with self._reading() as conn:
            row = _CREDENTIALS.first(conn, {"id": user_id})
        if row is None:
            return None
        *user, password_hash = row
        return UserCredentials(user_of_row(user), password_hash)

    def credentials_by_email(self, email: str) -> UserCredentials | None:
        with self._session() as s:
            row = s.exec(select(UserRow).where(UserRow.email == email)).first()
        return _credentials(row) if row else None

    def api_token_owner(self, token_hash: str) -> tuple[ApiToken, User | None] | None:
        with self._reading() as conn:
            row = _TOKEN_OWNER.first(conn, {"token_hash": token_hash})
        if row is None:
            return None
        token, owner = row[: len(TOKEN_COLUMNS)], row[len(TOKEN_COLUMNS) :]
        return token_of_row(token), user_of_row(owner) if owner[0] is not None else None

    def list_users(
        self, only_user_id: str | None, offset: int, limit: int
    ) -> tuple[list[User], int]:
        query = select(UserRow)
        if only_user_id is not None:
            query = query.where(UserRow.id == only_user_id)
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(col(UserRow.email)).offset(offset).limit(limit)).all()
        return [to_user(r) for r in rows], int(total)

    def emails(self, user_ids: Collection[str]) -> dict[str, str]:
        with self._session() as s:
            return dict(
                s.exec(
                    select(UserRow.id, UserRow.email).where(col(UserRow.id).in_(list(user_ids)))
                ).all()
            )

    def insert_user(self, email: str, name: str, password_hash: str, qpu_seconds: float) -> User:
        row = UserRow(email=email, name=name, password_hash=password_hash, qpu_seconds=qpu_seconds)
        try:
            with self._session() as s:
                s.add(row)
                s.commit()
        except IntegrityError as exc:
            raise DuplicateKeyError(email) from exc
        return to_user(row)

    def upsert_superuser(self, email: str, password_hash: str, now: datetime) -> User:
        with self._session() as s:
            row = s.exec(select(UserRow).where(UserRow.email == email)).first()
            if row is None:
                row = UserRow(email=email, password_hash=password_hash)
            else:
                row.password_hash = password_hash
                row.updated = now
            row.is_superuser = True
            s.add(row)
            s.commit()
        return to_user(row)

    def update_user(
        self,
        user_id: str,
        now: datetime,
        *,
        name: str | None = None,
        password_hash: str | None = None,
        qpu_seconds: float | None = None,
    ) -> User | None:
        with self._session() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            if password_hash is not None:
                row.password_hash = password_hash
            if qpu_seconds is not None:
                row.qpu_seconds = qpu_seconds
            row.updated = now
            s.add(row)
            s.commit()
        return to_user(row)

    def delete_user(self, user_id: str) -> bool:
        with self._session() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                return False
            s.delete(row)
            s.commit()
        return True

    def insert_api_token(
        self, user_id: str, token_hash: str, prefix: str, name: str, expires_at: datetime | None
    ) -> ApiToken:
        row = ApiTokenRow(
            user_id=user_id, token_hash=token_hash, prefix=prefix, name=name, expires_at=expires_at
        )
        with self._session() as s:
            if s.exec(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)).first():
                raise DuplicateKeyError(token_hash)
            s.add(row)
            s.commit()
        return _token(row)

    def get_api_token(self, token_id: str) -> ApiToken | None:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
        return _token(row) if row else None

    def list_api_tokens(
        self, user_id: str | None, offset: int, limit: int
    ) -> tuple[list[ApiToken], int]:
        query = select(ApiTokenRow)
        if user_id is not None:
            query = query.where(ApiTokenRow.user_id == user_id)
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(col(ApiTokenRow.created).desc()).offset(offset).limit(limit)
            ).all()
        return [_token(r) for r in rows], int(total)

    def update_api_token(
        self, token_id: str, *, name: str | None = None, expires_at: datetime | None | Keep = KEEP
    ) -> ApiToken | None:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            if not isinstance(expires_at, Keep):
                row.expires_at = expires_at
            s.add(row)
            s.commit()
        return _token(row)

    def delete_api_token(self, token_id: str) -> bool:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                return False
            s.delete(row)
            s.commit()
        return True

    def secret(self, name: str, initial: str) -> str:
        with self._session() as s:
            row = s.get(ServerSecretRow, name)
            if row is None:
                row = ServerSecretRow(name=name, value=initial)
                s.add(row)
                try:
                    s.commit()
                except IntegrityError:  # another replica stored it first
                    s.rollback()
                    row = s.get(ServerSecretRow, name)
                    assert row is not None
            return row.value
