"""ASGI middleware enforcing the request-body limit before any route sees the body."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qpi.gateway import errors


async def _send_too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        errors.envelope(413, f"Request body exceeds the limit of {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Reject bodies above ``max_bytes`` with a 413 envelope.

    The declared ``Content-Length`` is checked first; the streamed body is then read up to the
    limit (so a lying or chunked client cannot get past it) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer and check the body, then run the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await _send_too_large(send, self.max_bytes)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away before sending the body
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await _send_too_large(send, self.max_bytes)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                result: dict[str, Any] = {
                    "type": "http.request",
                    "body": b"".join(chunks),
                    "more_body": False,
                }
                return result
            return await receive()

        await self.app(scope, replay, send)
