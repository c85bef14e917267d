"""12.4b: a few kilobytes of QASM must not buy gigabytes of parsing or freeze others.

`qreg q[10000];` plus 1,600 x `h q;` (17 KB) expands to 16 million gate instances: a
gigabyte and a minute of parser time on the database thread before the fix. Now a
pre-scan refuses it before any parser runs, with a 400 naming the server option, and
whatever passes the pre-scan is parsed in a worker with a time and memory budget.
"""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from tests.security._qasm import error_info, grpc_submit, rest_submit
from tests.security.conftest import USER_PASSWORD, Actors
from tests.support.harness import ServerHarness

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
WIDE = HEADER + "qreg q[10000];\n" + "h q;\n" * 1600
LONG = HEADER + "qreg q[1000];\n" + "h q;\n" * 1600
NESTED = (
    HEADER
    + "gate g0 a { h a; h a; }\n"
    + "".join(f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}\n" for i in range(1, 40))
    + "qreg q[1];\ng39 q[0];\n"
)
INFINITE = HEADER + "qreg q[1];\nrz(1e999) q[0];\n"
OVERFLOW = HEADER + "qreg q[1];\nrz(1e300*1e300) q[0];\n"
SMALL = HEADER + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"


def test_rest_refuses_amplification_naming_the_limit(actors: Actors) -> None:
    for source, option in (
        (WIDE, "--max-circuit-width"),
        (LONG, "--max-operations"),
        (NESTED, "--max-operations"),
    ):
        response = rest_submit(actors.http, actors.alice, [source])
        assert response.status_code == 400, response.text
        assert option in response.json()["message"]
    # Many circuits, each small, still count against one job-wide operation budget.
    many = [HEADER + "qreg q[1000];\n" + "h q;\n" * 100] * 6
    response = rest_submit(actors.http, actors.alice, many)
    assert response.status_code == 400, response.text
    assert "--max-operations" in response.json()["message"]
    assert "circuit 5" in response.json()["message"]
    for source in (INFINITE, OVERFLOW):
        response = rest_submit(actors.http, actors.alice, [source])
        assert response.status_code == 400, response.text
        assert "not finite" in response.json()["message"] or "non-finite" in response.text


def test_grpc_refuses_amplification_with_circuit_too_large(actors: Actors) -> None:
    token = actors.alice["X-API-Token"]
    for source, limit in ((WIDE, "max_circuit_width"), (NESTED, "max_operations")):
        with pytest.raises(grpc.RpcError) as caught:
            grpc_submit(actors.server, token, [source])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        info = error_info(caught.value)
        assert info.reason == "CIRCUIT_TOO_LARGE"
        assert info.metadata["limit"] == limit
    with pytest.raises(grpc.RpcError) as caught:
        grpc_submit(actors.server, token, [OVERFLOW])
    assert error_info(caught.value).reason == "INVALID_QASM"


def _budgeted(server_factory: Any, **limits: object) -> tuple[ServerHarness, str, str]:
    """A server whose pre-scan lets the amplification through, so the parser budget acts."""
    server: ServerHarness = server_factory(
        max_circuit_width=20_000, max_operations=100_000_000, parser_processes=2, **limits
    )
    _, alice = server.create_user("alice@example.com", USER_PASSWORD, 100.0)
    _, bob = server.create_user("bob@example.com", USER_PASSWORD, 100.0)
    return server, alice, bob


@pytest.mark.timeout(600)
def test_parse_time_budget_ends_the_parse_and_others_are_served(server_factory: Any) -> None:
    server, alice, bob = _budgeted(server_factory, max_parse_time=2.0)
    qpu_id = server.create_qpu("fast", 4)
    outcome: dict[str, Any] = {}

    def attack() -> None:
        try:
            grpc_submit(server, alice, [WIDE])
        except grpc.RpcError as err:
            outcome["error"] = err

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    # Another user's submission is parsed by the other worker meanwhile.
    assert grpc_submit(server, bob, [SMALL], qpu=qpu_id).id
    attacker.join(120)
    assert not attacker.is_alive()
    err = outcome["error"]
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err)
    assert info.reason == "PARSE_BUDGET_EXCEEDED"
    assert info.metadata["limit"] == "max_parse_time"
    assert "--max-parse-time" in (err.details() or "")
    # The killed worker was replaced: parsing still works.
    assert grpc_submit(server, alice, [SMALL], qpu=qpu_id).id


@pytest.mark.timeout(900)
def test_parser_memory_budget_refuses_over_rest(server_factory: Any) -> None:
    server, alice, _ = _budgeted(
        server_factory, max_parse_time=600.0, max_parser_memory=64 * 1024 * 1024
    )
    import httpx

    with httpx.Client(base_url=server.http_url, timeout=600) as http:
        response = rest_submit(http, {"X-API-Token": alice}, [WIDE])
    assert response.status_code == 400, response.text
    assert "--max-parser-memory" in response.json()["message"]
