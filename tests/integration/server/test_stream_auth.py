"""Long-lived streams re-check credentials: revoking a token ends its open streams."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from qpi.server.rpc import credentials
from qpi.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
)
from tests.support.harness import ServerHarness


def _revoke_all_tokens(server: ServerHarness, token: str) -> None:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    for t in stub.ListApiTokens(
        account_service_pb2.ListApiTokensRequest(), metadata=server.auth(token)
    ).api_tokens:
        stub.DeleteApiToken(
            account_service_pb2.DeleteApiTokenRequest(id=t.id), metadata=server.auth(token)
        )


def _ended_unauthenticated(stream: grpc.Future, budget: float) -> float:
    started = time.monotonic()
    guard = threading.Timer(budget, stream.cancel)  # a stream that never ends fails, not hangs
    guard.start()
    with pytest.raises(grpc.RpcError) as caught:
        for _ in stream:  # type: ignore[attr-defined]
            pass
    guard.cancel()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
    elapsed = time.monotonic() - started
    assert elapsed < budget
    return elapsed


def test_revoked_token_ends_watch_and_subscribe_streams(
    qpi_server: ServerHarness, bell_qasm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials, "REAUTH_SECONDS", 0.3)
    qpi_server.register_qpu("q1")  # no driver: the job stays pending
    _, token = qpi_server.create_user("alice@example.com")
    job = qpi_server.submit(token, bell_qasm, qpu="q1")
    jobs = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())
    events = event_service_pb2_grpc.EventServiceStub(qpi_server.channel())
    watch = jobs.WatchJob(
        job_service_pb2.WatchJobRequest(id=job.id), metadata=qpi_server.auth(token)
    )
    assert next(watch).job.id == job.id
    subscribe = events.Subscribe(
        event_service_pb2.SubscribeRequest(), metadata=qpi_server.auth(token)
    )
    time.sleep(0.5)  # both streams pass at least one re-check while the token is valid
    _revoke_all_tokens(qpi_server, token)
    _ended_unauthenticated(watch, budget=3.0)
    _ended_unauthenticated(subscribe, budget=3.0)
