"""Opaque page tokens (AIP-158): an offset bound to the query that produced it."""

from __future__ import annotations

import base64
import hashlib
import json

from qpi.server.domain.errors import InvalidArgumentError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31 - 1


def page_window(page_size: int, page_token: str, skip: int, query_key: str) -> tuple[int, int]:
    """Returns (offset, limit) for a list request; validates the token against the query."""
    if page_size < 0 or not 0 <= skip <= MAX_OFFSET:
        raise InvalidArgumentError(
            "INVALID_FIELD", "page_size and skip must not be negative.", field="page_size"
        )
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = skip
    if page_token:
        try:
            data = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            offset = int(data["o"])
            if data["q"] != _digest(query_key) or not 0 <= offset <= MAX_OFFSET:
                raise ValueError("query changed")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgumentError(
                "INVALID_PAGE_TOKEN",
                "The page token is invalid or does not match this request.",
                field="page_token",
            ) from exc
    return offset, limit


def next_token(offset: int, limit: int, returned: int, total: int, query_key: str) -> str:
    """The token for the following page, or "" at the end."""
    if returned < limit or offset + returned >= total:
        return ""
    raw = json.dumps({"o": offset + returned, "q": _digest(query_key)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]
