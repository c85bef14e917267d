"""Fixtures for attack tests: a real in-process server (tests/support/harness.py) reached
over HTTP, with an administrator and two regular users."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.harness import ServerHarness

USER_PASSWORD = "userpassword1234"  # noqa: S105 - test fixture


@dataclass
class Actors:
    """Who takes part in an attack: an administrator and two users with API tokens."""

    server: ServerHarness
    http: httpx.Client
    admin: dict[str, str]
    alice_id: str
    alice: dict[str, str]
    bob_id: str
    bob: dict[str, str]


@pytest.fixture
def actors(qpi_server: ServerHarness) -> Iterator[Actors]:
    """The server, an HTTP client and REST headers for the admin, alice and bob."""
    alice_id, alice_token = qpi_server.create_user("alice@example.com", USER_PASSWORD, 100.0)
    bob_id, bob_token = qpi_server.create_user("bob@example.com", USER_PASSWORD, 100.0)
    with httpx.Client(base_url=qpi_server.http_url, timeout=60) as http:
        yield Actors(
            server=qpi_server,
            http=http,
            admin={"Authorization": f"Bearer {qpi_server.admin_token}"},
            alice_id=alice_id,
            alice={"X-API-Token": alice_token},
            bob_id=bob_id,
            bob={"X-API-Token": bob_token},
        )
