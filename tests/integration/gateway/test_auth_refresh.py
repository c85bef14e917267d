"""auth-refresh issues a new, working session token."""

from __future__ import annotations

import httpx

from tests.support.harness import ServerHarness


def test_auth_refresh_returns_a_fresh_working_token(qpi_server: ServerHarness) -> None:
    qpi_server.create_user("alice@example.com", password="alicepassword1")
    base = qpi_server.http_url + "/api/collections/users"
    login = httpx.post(
        base + "/auth-with-password",
        json={"identity": "alice@example.com", "password": "alicepassword1"},
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    refreshed = httpx.post(base + "/auth-refresh", headers={"Authorization": token})
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["record"]["email"] == "alice@example.com"
    assert body["token"] != token
    jobs = httpx.get(
        qpi_server.http_url + "/api/jobs", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert jobs.status_code == 200
    anonymous = httpx.post(base + "/auth-refresh")
    assert anonymous.status_code == 401
    assert anonymous.json()["status"] == 401
