"""What the OpenAPI document says beyond the routes themselves: credentials and errors.

The dashboard's TypeScript client is generated from this document, so it must tell the
truth: which credentials each route takes, and which error envelopes it can answer with.
FastAPI's default 422 response never occurs here (validation failures are 400 envelopes,
see :mod:`qpi.gateway.handlers`), so :func:`finish_schema` removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.security import APIKeyHeader, HTTPBearer

from qpi.gateway.models import ErrorOut

bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    description="`Authorization: Bearer <token>`: a session token from auth-with-password "
    "(or the OAuth2 exchange) or an API token (`qpi_…`).",
    auto_error=False,
)
api_token_scheme = APIKeyHeader(
    name="X-API-Token",
    scheme_name="apiToken",
    description="An API token (`qpi_…`) from `POST /api/tokens`.",
    auto_error=False,
)
pocketbase_scheme = APIKeyHeader(
    name="Authorization",
    scheme_name="pocketbaseAuth",
    description="PocketBase style: the session token as the whole `Authorization` value.",
    auto_error=False,
)

OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}
"""``openapi_extra`` of routes that also serve anonymous callers (credentials optional)."""

_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid parameters or body (the envelope's `data` names the fields).",
    401: "Missing, invalid or expired credentials.",
    403: "The caller may not do this.",
    404: "No such resource, or not visible to the caller.",
    409: "Already exists, or changed concurrently.",
    413: "Request body too large.",
    429: "Too many requests (e.g. failed logins); retry after `Retry-After` seconds.",
    503: "The server or its database is temporarily unavailable; retry later.",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting error envelopes with these statuses."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        documented[code] = {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        if code in (429, 503):
            documented[code]["headers"] = _RETRY_AFTER
    return documented


def api(*codes: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """Errors of a route that calls the services: 400 and 503 always, 401 when authenticated."""
    base: Iterable[int] = (400, 401, 503) if auth else (400, 503)
    return responses(*sorted({*base, *codes}))


_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Remove FastAPI's never-returned 422 responses and their schemas.

    Every operation that had a 422 (it has parameters or a body) documents 400 instead.

    Args:
        schema: The document from ``fastapi.openapi.utils.get_openapi``.

    Returns:
        The same document, edited in place.
    """
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            answers = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if answers.pop("422", None) is not None:
                answers.setdefault("400", _error_response(400))
    components = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
