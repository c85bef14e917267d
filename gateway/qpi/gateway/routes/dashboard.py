"""``/dashboard/``: the built dashboard as static files (``/`` redirects there).

The dashboard is a single page with hash routing, so only ``index.html`` and the hashed
files under ``assets/`` are ever requested. A directory without ``index.html`` (not built
yet) gets an HTML page saying how to build it instead of a bare 404.
"""

from __future__ import annotations

import html
from pathlib import Path, PurePosixPath

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from qpi.gateway.config import GatewayConfig

_IMMUTABLE = "public, max-age=31536000, immutable"
"""Vite puts a content hash in every asset name, so an asset never changes."""

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # CodeMirror adds <style> elements at run time, hence 'unsafe-inline' for styles only.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QPI dashboard not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The QPI dashboard has not been built</h1>
<p>This server looks for the built dashboard in <code>{where}</code>, which has no
<code>index.html</code>.</p>
<p>Build it from a QPI checkout with <code>make build</code> (needs Node.js 20.19 or newer,
only at build time), or point <code>qpi serve --dashboard-dir</code> at a built
<code>dashboard/dist</code> directory. The REST API works without it:
<a href="/docs">/docs</a>.</p>
</body></html>
"""


def resolve_asset(root: Path, path: str) -> Path | None:
    """The file under ``root`` to serve for ``path``.

    Existing files are served as they are; paths without a file extension fall back to
    ``index.html`` (deep links); anything else, including paths escaping ``root`` (``..``,
    absolute, symlinks out), resolves to None.

    Args:
        root: Dashboard directory.
        path: Request path below ``/dashboard/``.

    Returns:
        The file to send, or None for a 404.
    """
    base = root.resolve()
    candidate = (base / path.lstrip("/")).resolve()
    if candidate.is_relative_to(base) and candidate.is_file():
        return candidate
    if PurePosixPath(path).suffix:
        return None
    index = base / "index.html"
    return index if index.is_file() else None


def _not_built(root: Path | None) -> HTMLResponse:
    where = html.escape(str(root) if root is not None else "(no directory configured)")
    return HTMLResponse(_NOT_BUILT.format(where=where), status_code=404, headers=_HEADERS)


def _file(found: Path, root: Path) -> FileResponse:
    immutable = found.parent.name == "assets" and found.parent.parent == root.resolve()
    headers = {**_HEADERS, "Cache-Control": _IMMUTABLE if immutable else "no-cache"}
    return FileResponse(found, headers=headers)


def build_router(config: GatewayConfig) -> APIRouter:
    """Create ``/``, ``/dashboard`` and ``/dashboard/{path}``."""
    router = APIRouter(tags=["dashboard"], include_in_schema=False)
    root = config.dashboard_dir

    @router.get("/")
    async def site_root() -> Response:
        return RedirectResponse("/dashboard/", status_code=307)

    @router.get("/dashboard")
    async def dashboard_root() -> Response:
        return RedirectResponse("/dashboard/", status_code=307)

    @router.get("/dashboard/{path:path}")
    async def dashboard(path: str) -> Response:
        if root is None or not (root / "index.html").is_file():
            return _not_built(root)
        found = resolve_asset(root, path)
        if found is None:
            return Response("Not found.", status_code=404, headers=_HEADERS)
        return _file(found, root)

    return router
