"""12.6: self-registered API tokens must have the server's format (`qpi_` + 64 hex)."""

from __future__ import annotations

import hashlib
import secrets

import grpc
import pytest

from qpi.v1 import account_service_pb2, account_service_pb2_grpc
from tests.security.conftest import Actors

TOKENS = "/api/collections/api_tokens/records"


def test_weak_secrets_can_neither_be_registered_nor_authenticate(actors: Actors) -> None:
    http = actors.http
    weak = "test-api-token-abc-123"
    refused = http.post(TOKENS, json={"token": weak}, headers=actors.alice)
    assert refused.status_code == 400
    assert "qpi_ followed by 64 lowercase hex" in refused.json()["data"]["token"]["message"]

    stub = account_service_pb2_grpc.AccountServiceStub(actors.server.channel())
    alice = actors.server.auth(actors.alice["X-API-Token"])
    with pytest.raises(grpc.RpcError) as raw_refused:
        stub.CreateApiToken(account_service_pb2.CreateApiTokenRequest(token=weak), metadata=alice)
    assert raw_refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]

    # A digest cannot reveal its secret's format, so a weak secret registered by digest is
    # accepted as data but can never be used as a credential.
    digest = hashlib.sha256(weak.encode()).hexdigest()
    assert http.post(TOKENS, json={"token": digest}, headers=actors.alice).status_code == 200
    denied = http.get("/api/jobs", headers={"X-API-Token": weak})
    assert denied.status_code == 401
    assert "qpi_ followed by 64" in denied.json()["message"]


def test_tokens_in_the_server_format_register_raw_or_by_digest(actors: Actors) -> None:
    http = actors.http
    raw = "qpi_" + secrets.token_hex(32)
    created = http.post(TOKENS, json={"token": raw, "name": "mine"}, headers=actors.alice)
    assert created.status_code == 200, created.text
    assert "token" not in created.json()  # the secret is never echoed
    assert http.get("/api/jobs", headers={"X-API-Token": raw}).status_code == 200

    other = "qpi_" + secrets.token_hex(32)
    digest = hashlib.sha256(other.encode()).hexdigest()
    assert http.post(TOKENS, json={"token": digest}, headers=actors.bob).status_code == 200
    assert http.get("/api/jobs", headers={"X-API-Token": other}).status_code == 200
    assert http.post(TOKENS, json={"token": raw}, headers=actors.bob).status_code == 409
