"""OAuth2 sign-in (authorization code + PKCE), run by the server's AccountService.

``authorize`` asks the server to start a login and sends the browser to the provider,
keeping the server's signed flow token in a short-lived HttpOnly cookie; ``callback``
hands the provider's answer and that cookie back to the server and sends the browser to
the dashboard with a one-time ``oauth2_code`` (or an ``oauth2_error``); ``exchange``
trades the code for a session exactly like auth-with-password.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from qpi.gateway import errors, records
from qpi.gateway.context import PublicCtxDep
from qpi.gateway.models import OAuth2Exchange, PathId
from qpi.gateway.openapi import responses
from qpi.gateway.record_models import SessionOut
from qpi.v1 import account_service_pb2

router = APIRouter(prefix="/api/oauth2", tags=["oauth2"])

FLOW_COOKIE = "qpi_oauth2_flow"
COOKIE_PATH = "/api/oauth2/"
DASHBOARD = "/dashboard/"
LANDING_FRAGMENT = "overview"
MAX_ERROR_CHARS = 300
LOCAL_PATH = r"^/([^/\\\x00-\x1f][^\\\x00-\x1f]*)?$"
"""A path on this server: never ``//host`` or a backslash trick (no open redirect)."""

_REDIRECT: dict[int | str, dict[str, Any]] = {
    302: {
        "description": "Redirect (the `Location` header says where).",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
}


def authorize_url(provider: str, redirect: str = DASHBOARD) -> str:
    """The server URL that starts a login with ``provider`` (the dashboard's button link)."""
    return f"/api/oauth2/{quote(provider, safe='')}/authorize?redirect={quote(redirect)}"


def landing(path: str, key: str, value: str) -> str:
    """``path`` with ``key=value`` added to its query and ``#overview`` unless it has a fragment.

    Args:
        path: A local path such as ``/dashboard/``.
        key: ``oauth2_code`` or ``oauth2_error``.
        value: Its value (URL-encoded here).

    Returns:
        The relative URL to redirect the browser to.
    """
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("oauth2_code", "oauth2_error")]
    query.append((key, value))
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment or LANDING_FRAGMENT))


def _failed(message: str) -> str:
    return landing(DASHBOARD, "oauth2_error", errors.sentence(message)[:MAX_ERROR_CHARS])


@router.get(
    "/{provider}/authorize",
    status_code=302,
    response_class=RedirectResponse,
    responses={**_REDIRECT, **responses(400, 404, 503)},
)
async def authorize(
    provider: PathId,
    request: Request,
    ctx: PublicCtxDep,
    redirect: Annotated[
        str,
        Query(
            max_length=512,
            pattern=LOCAL_PATH,
            description="Local path to return to after the login.",
        ),
    ] = DASHBOARD,
) -> RedirectResponse:
    """Start a login: redirect to the provider with state, nonce and a PKCE challenge."""
    callback = str(request.url_for("oauth2_callback", provider=provider))
    resp: account_service_pb2.StartOAuth2LoginResponse = await ctx.call(
        ctx.stubs.accounts.StartOAuth2Login,
        account_service_pb2.StartOAuth2LoginRequest(
            provider=provider, redirect_uri=callback, return_path=redirect
        ),
    )
    lifetime = max(int(resp.expire_time.seconds - time.time()), 1)
    answer = RedirectResponse(resp.authorization_uri, status_code=302)
    answer.set_cookie(
        FLOW_COOKIE,
        resp.flow_token,
        max_age=lifetime,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=request.url.scheme == "https",
    )
    return answer


@router.get(
    "/{provider}/callback",
    name="oauth2_callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={**_REDIRECT, **responses(400, 503)},
)
async def callback(
    provider: PathId,
    request: Request,
    ctx: PublicCtxDep,
    code: Annotated[str, Query(max_length=2048)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
    error_description: Annotated[str, Query(max_length=1024)] = "",
) -> RedirectResponse:
    """The provider's redirect: finish the login, then go to the dashboard with a code."""
    if error:
        target = _failed(f"The sign-in was refused: {error_description or error}")
    else:
        try:
            resp: account_service_pb2.CompleteOAuth2LoginResponse = await ctx.call(
                ctx.stubs.accounts.CompleteOAuth2Login,
                account_service_pb2.CompleteOAuth2LoginRequest(
                    provider=provider,
                    code=code,
                    state=state,
                    flow_token=request.cookies.get(FLOW_COOKIE, ""),
                ),
            )
        except errors.ApiError as exc:
            target = _failed(exc.message)
        else:
            target = landing(resp.return_path or DASHBOARD, "oauth2_code", resp.login_code)
    answer = RedirectResponse(target, status_code=302)
    answer.delete_cookie(FLOW_COOKIE, path=COOKIE_PATH)
    return answer


@router.post("/exchange", responses=responses(400, 401, 413, 429, 503))
async def exchange(body: OAuth2Exchange, ctx: PublicCtxDep) -> SessionOut:
    """Trade the one-time ``oauth2_code`` for ``{token, record}`` (single use, short-lived)."""
    resp: account_service_pb2.ExchangeOAuth2LoginCodeResponse = await ctx.call(
        ctx.stubs.accounts.ExchangeOAuth2LoginCode,
        account_service_pb2.ExchangeOAuth2LoginCodeRequest(login_code=body.code),
    )
    collection = ctx.config.users_collection
    return SessionOut.model_validate(records.session_object(collection, resp.token, resp.user))
