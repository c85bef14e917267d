"""Exception handlers: every failure leaves the gateway as the PocketBase error envelope."""

from __future__ import annotations

import logging
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from qpi.gateway import errors
from qpi.gateway.filters import FilterError
from qpi.gateway.timefmt import DateFormatError

logger = logging.getLogger(__name__)


def error_response(error: errors.ApiError) -> JSONResponse:
    """Render an :class:`errors.ApiError`."""
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers or None)


def validation_data(raw_errors: Any) -> tuple[dict[str, Any], bool]:
    """Turn FastAPI/pydantic validation errors into envelope ``data`` entries.

    Args:
        raw_errors: ``RequestValidationError.errors()``.

    Returns:
        The per-field map and whether any error concerned the request body.
    """
    data: dict[str, Any] = {}
    in_body = False
    for item in raw_errors:
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] == "body":
            in_body = True
            loc = loc[1:]
        elif loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        name = ".".join(loc) or "body"
        code = "validation_" + str(item.get("type", "invalid")).replace(".", "_")
        data.setdefault(name, errors.field_error(code, str(item.get("msg", "invalid value"))))
    return data, in_body


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ApiError)
    return error_response(exc)


async def _on_rpc_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return error_response(errors.api_error_from_rpc(exc))


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    data, in_body = validation_data(exc.errors())
    message = "Invalid request body." if in_body else "Invalid request parameters."
    return error_response(errors.ApiError(400, message, data))


async def _on_bad_value(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, FilterError):
        message = f"Invalid filter or sort: {exc}"
    elif isinstance(exc, DateFormatError):
        message = f"Invalid date: {exc}"
    else:
        message = "Invalid request body."
    return error_response(errors.ApiError(400, message))


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (for a 405's ``Allow``).

    Starlette puts only the first partially matching route's methods in ``Allow``; a path
    served by several routes (``GET`` and ``POST /api/jobs``) needs all of them. Each
    method is tried against the routes through their public ``matches``.
    """
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else ""
    generic = {"Not Found", "Method Not Allowed", "Bad Request"}
    message = errors.default_message(status) if not detail or detail in generic else detail
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return JSONResponse(errors.envelope(status, message), status_code=status, headers=headers)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("[gateway] unexpected error", exc_info=exc)
    return error_response(errors.ApiError(500, errors.default_message(500)))


def install(app: FastAPI) -> None:
    """Register all exception handlers on ``app``."""
    app.add_exception_handler(errors.ApiError, _on_api_error)
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(FilterError, _on_bad_value)
    app.add_exception_handler(DateFormatError, _on_bad_value)
    app.add_exception_handler(UnicodeError, _on_bad_value)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
