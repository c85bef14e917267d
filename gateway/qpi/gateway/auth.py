"""Credential pass-through: read the caller's token from the request, forward it to gRPC.

Accepted forms (the server decides whether the token is valid and what it allows):
``Authorization: Bearer <token>``, ``Authorization: <jwt>`` (PocketBase style) and
``X-API-Token: <token>``; the realtime route also accepts ``?token=``.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from qpi.gateway import errors

_BEARER = "bearer "
MAX_TOKEN_CHARS = 4096


def _checked(token: str | None) -> str | None:
    """The token if it can travel as gRPC metadata (printable ASCII), else a 401 envelope."""
    if token is not None and (
        len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable()
    ):
        raise errors.ApiError(401, "The credentials are malformed.")
    return token


def token_from_headers(authorization: str | None, api_token: str | None) -> str | None:
    """Pick the caller's token from the two credential headers.

    ``X-API-Token`` wins when both are present, as the API-token route of the original did
    for requests whose Authorization header carried no valid session.

    Args:
        authorization: The ``Authorization`` header value.
        api_token: The ``X-API-Token`` header value.

    Returns:
        The raw token, or None for an anonymous request.
    """
    if api_token and api_token.strip():
        return api_token.strip()
    if authorization:
        value = authorization.strip()
        if value.lower().startswith(_BEARER):
            value = value[len(_BEARER) :].strip()
        return value or None
    return None


def request_token(conn: HTTPConnection, allow_query: bool = False) -> str | None:
    """Return the token a request carries, or None.

    Args:
        conn: The incoming request or websocket.
        allow_query: Also accept ``?token=`` (for EventSource clients that cannot set headers).

    Returns:
        The raw token or None.

    Raises:
        errors.ApiError: 401 when the token is not printable ASCII or absurdly long.
    """
    token = token_from_headers(conn.headers.get("authorization"), conn.headers.get("x-api-token"))
    if token is None and allow_query:
        query = conn.query_params.get("token", "").strip()
        token = query or None
    return _checked(token)
