"""User and API-token listings: filter, sort, page and count in SQL (see store.listing)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import literal

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import ApiToken, User
from qpi.server.store.account_rows import TOKEN_COLUMNS, USER_COLUMNS
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import DATE, NUMBER, FieldSpec, run_listing
from qpi.server.store.tables import ApiTokenRow, UserRow

_USERS = UserRow.__table__  # type: ignore[attr-defined]
_TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]

# The fields of `users` records; `verified` and `emailVisibility` are the same for everyone.
USER_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_USERS.c.id),
    "email": FieldSpec(_USERS.c.email, free_text=True),
    "name": FieldSpec(_USERS.c.name, free_text=True),
    "qpu_seconds": FieldSpec(_USERS.c.qpu_seconds, NUMBER),
    "verified": FieldSpec(literal(1.0), NUMBER, constant=True),
    "emailVisibility": FieldSpec(literal(0.0), NUMBER, constant=True),
    "created": FieldSpec(_USERS.c.created, DATE),
    "updated": FieldSpec(_USERS.c.updated, DATE),
}
BY_EMAIL = (SortKey("email"),)

# The fields of `api_tokens` records.
TOKEN_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_TOKENS.c.id),
    "name": FieldSpec(_TOKENS.c.name, free_text=True),
    "user": FieldSpec(_TOKENS.c.user_id),
    "expires_at": FieldSpec(_TOKENS.c.expires_at, DATE, nullable=True),
    "created": FieldSpec(_TOKENS.c.created, DATE),
}
NEWEST_FIRST = (SortKey("created", descending=True),)


class AccountListing(Protocol):
    """Lists users and API tokens by an arbitrary filter and order, a page at a time."""

    def list_users_query(
        self, only_user_id: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[User], Total | None]:
        """One page of users (only one when `only_user_id`) matching `query`, and the
        number of matches (None when not counted). Raises INVALID_FILTER."""
        ...

    def list_tokens_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[ApiToken], Total | None]:
        """One page of `owner`'s tokens (everyone's for None) matching `query`."""
        ...


class SqlAccountListing(SqlRepository):
    """AccountListing on SQLite or PostgreSQL."""

    def list_users_query(
        self, only_user_id: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[User], Total | None]:
        scope = [] if only_user_id is None else [_USERS.c.id == only_user_id]
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                USER_COLUMNS,
                scope,
                query,
                USER_FIELDS,
                tie_breakers=[_USERS.c.id],
                default_sort=BY_EMAIL,
                now=now,
            )
        return [User(**r) for r in rows], total

    def list_tokens_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[ApiToken], Total | None]:
        scope = [] if owner is None else [_TOKENS.c.user_id == owner]
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                TOKEN_COLUMNS,
                scope,
                query,
                TOKEN_FIELDS,
                tie_breakers=[_TOKENS.c.id],
                default_sort=NEWEST_FIRST,
                now=now,
            )
        return [ApiToken(**r) for r in rows], total
