"""User and API-token rows as Core columns and their domain records: shared by the account
store, its listings, and the submits that read their owner (:mod:`qpi.server.store.jobs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column

from qpi.server.domain.models import ApiToken, User
from qpi.server.store.tables import API_TOKENS, USERS

USER_COLUMNS: tuple[Column[Any], ...] = tuple(
    USERS.c[name]
    for name in ("id", "email", "name", "is_superuser", "qpu_seconds", "created", "updated")
)
"""A :class:`User`'s columns, in the order of its fields."""

TOKEN_COLUMNS: tuple[Column[Any], ...] = tuple(
    API_TOKENS.c[name] for name in ("id", "user_id", "prefix", "name", "expires_at", "created")
)
"""An :class:`ApiToken`'s columns, in the order of its fields."""


def user_of_row(values: Sequence[Any]) -> User:
    """The user whose :data:`USER_COLUMNS` values these are."""
    return User(*values)


def token_of_row(values: Sequence[Any]) -> ApiToken:
    """The API token whose :data:`TOKEN_COLUMNS` values these are."""
    return ApiToken(*values)
