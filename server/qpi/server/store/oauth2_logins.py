"""OAuth2 sign-ins: provider identities linked to users, and one-time login codes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from qpi.server.domain.models import User
from qpi.server.store.accounts import to_user
from qpi.server.store.base import DuplicateKeyError, SqlRepository, rowcount
from qpi.server.store.tables import OAuth2IdentityRow, OAuth2LoginCodeRow, UserRow


class OAuth2LoginRepository(Protocol):
    """Which user a provider's subject signs in, and the codes the browser trades."""

    def linked_user(self, provider: str, subject: str) -> User | None:
        """The user an identity was linked to by an earlier sign-in."""
        ...

    def link(
        self, provider: str, subject: str, email: str, name: str, new_password_hash: str | None
    ) -> User | None:
        """Links an identity to the user with `email`, creating that user (zero balance,
        unusable password `new_password_hash`) when there is none and creation is allowed
        (`new_password_hash` is not None). None when there is no user and creation is not
        allowed. Raises DuplicateKeyError when a concurrent sign-in linked it first."""
        ...

    def store_code(self, code_hash: str, user_id: str, expires: datetime, now: datetime) -> None:
        """Stores a login code (and forgets codes that expired before `now`)."""
        ...

    def consume_code(self, code_hash: str) -> tuple[str, datetime] | None:
        """Removes a login code and returns (user id, expiry); None if it was unknown or
        another exchange consumed it first."""
        ...


class SqlOAuth2LoginRepository(SqlRepository):
    """OAuth2LoginRepository on SQLite or PostgreSQL."""

    def linked_user(self, provider: str, subject: str) -> User | None:
        with self._session() as s:
            row = s.exec(
                select(UserRow)
                .join(OAuth2IdentityRow, col(OAuth2IdentityRow.user_id) == col(UserRow.id))
                .where(OAuth2IdentityRow.provider == provider, OAuth2IdentityRow.subject == subject)
            ).first()
            return to_user(row) if row is not None else None

    def link(
        self, provider: str, subject: str, email: str, name: str, new_password_hash: str | None
    ) -> User | None:
        try:
            with self._session() as s:
                user = s.exec(select(UserRow).where(UserRow.email == email)).first()
                if user is None:
                    if new_password_hash is None:
                        return None
                    user = UserRow(
                        email=email, name=name, password_hash=new_password_hash, qpu_seconds=0.0
                    )
                    s.add(user)
                    s.flush()
                s.add(
                    OAuth2IdentityRow(
                        provider=provider, subject=subject, user_id=user.id, email=email
                    )
                )
                s.commit()
                return to_user(user)
        except IntegrityError as exc:
            raise DuplicateKeyError(f"{provider}:{subject}") from exc

    def store_code(self, code_hash: str, user_id: str, expires: datetime, now: datetime) -> None:
        with self._session() as s:
            s.execute(delete(OAuth2LoginCodeRow).where(col(OAuth2LoginCodeRow.expires_at) <= now))
            s.add(OAuth2LoginCodeRow(code_hash=code_hash, user_id=user_id, expires_at=expires))
            s.commit()

    def consume_code(self, code_hash: str) -> tuple[str, datetime] | None:
        with self._session() as s:
            row = s.get(OAuth2LoginCodeRow, code_hash)
            if row is None:
                return None
            found = (row.user_id, row.expires_at)
            # Conditional delete: of two concurrent exchanges only one removes the row.
            result = s.execute(
                delete(OAuth2LoginCodeRow).where(col(OAuth2LoginCodeRow.code_hash) == code_hash)
            )
            s.commit()
        return found if rowcount(result) == 1 else None
