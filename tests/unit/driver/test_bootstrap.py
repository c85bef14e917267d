"""Bootstrap over plain HTTP must never weaken a pinned driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from qpi.driver import bootstrap
from qpi.driver.bootstrap import SecurityError, discover


def _serve(monkeypatch: pytest.MonkeyPatch, info: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/pub/server-info":
            return httpx.Response(200, json=info)
        return httpx.Response(404)

    real = httpx.Client

    def client(*args: Any, **kwargs: Any) -> httpx.Client:
        return real(*args, transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(bootstrap.httpx, "Client", client)


def test_pinned_driver_refuses_a_server_info_that_disables_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _serve(monkeypatch, {"grpc_port": 4444, "grpc_tls": False, "version": "v0"})
    with pytest.raises(SecurityError, match="no TLS"):
        discover("http://qpi.example:8090", "ab" * 32, tmp_path / "ca.pem", "")
    assert not (tmp_path / "ca.pem").exists()


@pytest.mark.parametrize("info", [{"grpc_tls": True}, ["not", "an", "object"], None])
def test_malformed_server_info_is_a_retryable_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, info: Any
) -> None:
    _serve(monkeypatch, info)
    with pytest.raises(ValueError, match="malformed server-info"):
        discover("http://qpi.example:8090", "ab" * 32, tmp_path / "ca.pem", "")
