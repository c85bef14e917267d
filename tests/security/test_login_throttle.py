"""12.6: password guessing is throttled per account and per address, and Argon2 never runs
on a database thread (where every hash delayed every other request on SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from qpi.server.security import passwords
from qpi.server.services import account_service
from qpi.v1 import account_service_pb2, account_service_pb2_grpc
from tests.security.conftest import USER_PASSWORD, Actors
from tests.support.harness import ServerHarness

LOGIN = "/api/collections/users/auth-with-password"


def _rest_login(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post(LOGIN, json={"identity": email, "password": password})


def _grpc_login(
    server: ServerHarness, email: str, password: str, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.RpcError | None:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    try:
        stub.Login(
            account_service_pb2.LoginRequest(email=email, password=password),
            metadata=metadata,
            timeout=30,
        )
    except grpc.RpcError as exc:
        return exc
    return None


def _details(error: grpc.RpcError) -> tuple[str, float | None]:
    """(ErrorInfo reason, RetryInfo seconds) of a failed call."""
    reason, retry = "", None
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                hint = error_details_pb2.RetryInfo()
                detail.Unpack(hint)
                retry = hint.retry_delay.ToNanoseconds() / 1e9
    return reason, retry


def test_guessing_one_account_is_throttled_on_rest_and_grpc(actors: Actors) -> None:
    http = actors.http
    for _ in range(10):  # the default allowance: 10 failures per 15 minutes
        assert _rest_login(http, "alice@example.com", "wrong guess!").status_code == 400
    blocked = _rest_login(http, "alice@example.com", USER_PASSWORD)  # even the right one
    assert blocked.status_code == 429, blocked.text
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "too many failed logins for this account" in blocked.json()["message"].lower()

    error = _grpc_login(actors.server, "ALICE@example.com ", USER_PASSWORD)  # same account
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    reason, retry = _details(error)
    assert reason == "TOO_MANY_LOGIN_ATTEMPTS"
    assert retry is not None
    assert retry > 0

    # Other accounts are unaffected.
    assert _rest_login(http, "bob@example.com", USER_PASSWORD).status_code == 200


def test_guessing_from_one_address_is_throttled_whatever_the_account(
    server_factory: Callable[..., ServerHarness],
) -> None:
    server = server_factory(login_limit_per_account="", login_limit_per_address="5 per minute")
    with httpx.Client(base_url=server.http_url, timeout=60) as http:
        for index in range(5):
            assert _rest_login(http, f"nobody{index}@example.com", "guess-guess").status_code == 400
        assert _rest_login(http, "nobody9@example.com", "guess-guess").status_code == 429
    # gRPC callers from the same address share the allowance, and cannot escape it by
    # claiming another address in the metadata the gateway uses.
    forged = (("x-qpi-client-address", "203.0.113.7"),)
    error = _grpc_login(server, "someone@example.com", "guess-guess", forged)
    assert error is not None
    assert _details(error)[0] == "TOO_MANY_LOGIN_ATTEMPTS"


def test_password_hashing_never_runs_on_a_database_thread(
    actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def recorded(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            threads.append(threading.current_thread().name)
            return function(*args)

        return wrapper

    monkeypatch.setattr(passwords, "hash_password", recorded(passwords.hash_password))
    monkeypatch.setattr(passwords, "verify_password", recorded(passwords.verify_password))
    monkeypatch.setattr(account_service, "hash_password", recorded(account_service.hash_password))
    http = actors.http
    assert _rest_login(http, "alice@example.com", USER_PASSWORD).status_code == 200
    assert _rest_login(http, "alice@example.com", "wrong guess!").status_code == 400
    assert _rest_login(http, "nobody@example.com", "wrong guess!").status_code == 400
    created = http.post(
        "/api/collections/users/records",
        json={"email": "carol@example.com", "password": "carols password"},
        headers=actors.admin,
    )
    assert created.status_code == 200, created.text
    changed = http.patch(
        f"/api/collections/users/records/{actors.bob_id}",
        json={"password": "a new password", "passwordConfirm": "a new password"},
        headers=actors.bob,
    )
    assert changed.status_code == 200, changed.text
    assert len(threads) >= 5
    assert not [name for name in threads if name.startswith("qpi-db")], threads
