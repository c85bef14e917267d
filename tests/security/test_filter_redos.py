"""12.3: a collection filter's ``~`` must not freeze the server (regular-expression DoS)."""

from __future__ import annotations

import threading
from typing import Any

from qpi.v1 import account_service_pb2, account_service_pb2_grpc
from tests.security.conftest import Actors
from tests.support.harness import ServerHarness

REQUESTS = "/api/collections/qpu_time_requests/records"
# With the old regex translation this pattern backtracks exponentially over a run of "a".
EVIL = "%a" * 2000 + "%b"


def _other_user_is_served(server: ServerHarness, token: str) -> str:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    reply = stub.GetCurrentUser(
        account_service_pb2.GetCurrentUserRequest(), metadata=server.auth(token), timeout=30
    )
    return str(reply.user.email)


def test_backtracking_like_pattern_neither_freezes_nor_fails(actors: Actors) -> None:
    http = actors.http
    created = http.post(
        REQUESTS, json={"seconds": 10, "requested_reason": "a" * 5000}, headers=actors.alice
    )
    assert created.status_code == 200, created.text

    outcome: dict[str, Any] = {}

    def attack() -> None:
        outcome["response"] = http.get(
            REQUESTS, params={"filter": f'requested_reason ~ "{EVIL}"'}, headers=actors.alice
        )

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    # While the filter is being evaluated, gRPC and REST keep answering other users.
    bob_token = actors.bob["X-API-Token"]
    assert _other_user_is_served(actors.server, bob_token) == "bob@example.com"
    assert http.get("/api/collections/qpus/records", headers=actors.bob).status_code == 200
    attacker.join(60)
    assert not attacker.is_alive(), "the filter request did not finish within 60 s"
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert response.json()["totalItems"] == 0

    # The same pieces in a matching order find the record, so the matcher really ran.
    found = http.get(
        REQUESTS,
        params={"filter": 'requested_reason ~ "' + "%a" * 2000 + '%"'},
        headers=actors.alice,
    )
    assert found.status_code == 200, found.text
    assert found.json()["totalItems"] == 1


def test_unknown_filter_errors_stay_precise(actors: Actors) -> None:
    bad = actors.http.get(REQUESTS, params={"filter": 'nope ~ "x"'}, headers=actors.alice)
    assert bad.status_code == 400
    assert "unknown field 'nope'" in bad.json()["message"]
