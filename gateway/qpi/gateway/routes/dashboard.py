"""``/dashboard/``: the built dashboard, with single-page-app fallback to ``index.html``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from qpi.gateway import errors
from qpi.gateway.config import GatewayConfig


def resolve_asset(root: Path, path: str) -> Path | None:
    """The file under ``root`` to serve for ``path``: the asset itself, else ``index.html``.

    Paths escaping ``root`` (``..``, absolute, symlinks out) never resolve to their target.

    Args:
        root: Dashboard directory.
        path: Request path below ``/dashboard/``.

    Returns:
        The file, or None when there is no ``index.html`` either.
    """
    base = root.resolve()
    candidate = (base / path.lstrip("/")).resolve()
    if candidate.is_relative_to(base) and candidate.is_file():
        return candidate
    index = base / "index.html"
    return index if index.is_file() else None


def build_router(config: GatewayConfig) -> APIRouter:
    """Create the dashboard routes (404 envelopes when no dashboard is configured)."""
    router = APIRouter(tags=["dashboard"], include_in_schema=False)
    root = config.dashboard_dir

    @router.get("/dashboard")
    async def dashboard_root() -> Response:
        return RedirectResponse("/dashboard/", status_code=307)

    @router.get("/dashboard/{path:path}")
    async def dashboard(path: str) -> Response:
        if root is None:
            raise errors.ApiError(404, "Dashboard not available.")
        found = resolve_asset(root, path)
        if found is None:
            raise errors.ApiError(404, "Dashboard not available.")
        return FileResponse(found)

    return router
