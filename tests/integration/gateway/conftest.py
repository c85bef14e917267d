"""Fixtures for gateway integration tests: a real server plus REST clients per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

USER_PASSWORD = "userpassword1234"


@dataclass
class Rest:
    """A real server reached over HTTP, with an admin and two users (A and B)."""

    server: object
    http: httpx.Client
    admin: dict[str, str]
    a_id: str
    a: dict[str, str]
    a_session: dict[str, str]
    b_id: str
    b: dict[str, str]
    b_session: dict[str, str]

    def login(self, email: str, password: str, collection: str = "users") -> str:
        resp = self.http.post(
            f"/api/collections/{collection}/auth-with-password",
            json={"identity": email, "password": password},
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["token"])

    def balance(self, user_id: str) -> float:
        resp = self.http.get(f"/api/collections/users/records/{user_id}", headers=self.admin)
        assert resp.status_code == 200, resp.text
        return float(resp.json()["qpu_seconds"])


def envelope(resp: httpx.Response, *statuses: int) -> dict:
    """Assert ``resp`` is an error envelope with one of ``statuses``; return its body."""
    body = resp.json()
    assert resp.status_code in statuses, (resp.status_code, body)
    assert set(body) == {"data", "message", "status"}, body
    assert body["status"] == resp.status_code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["data"], dict)
    return body


@pytest.fixture
def rest(qpi_server: object) -> Iterator[Rest]:
    server = qpi_server
    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        probe = Rest(server, http, {}, "", {}, {}, "", {}, {})
        admin_token = probe.login(
            server.admin_email,
            server.admin_password,
            "_superusers",
        )
        a_id, a_token = server.create_user(
            "a@example.com", password=USER_PASSWORD, qpu_seconds=1000.0
        )
        b_id, b_token = server.create_user(
            "b@example.com", password=USER_PASSWORD, qpu_seconds=1000.0
        )
        yield Rest(
            server=server,
            http=http,
            admin={"Authorization": admin_token},
            a_id=a_id,
            a={"X-API-Token": a_token},
            a_session={"Authorization": f"Bearer {probe.login('a@example.com', USER_PASSWORD)}"},
            b_id=b_id,
            b={"X-API-Token": b_token},
            b_session={"Authorization": probe.login("b@example.com", USER_PASSWORD)},
        )
