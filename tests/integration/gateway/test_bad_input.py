"""Hostile and malformed input on every route: 4xx envelopes, and nothing changes."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import Rest, envelope

NAN_BODY = b'{"name": NaN, "seconds": NaN, "qpu_seconds": NaN, "id": NaN, "title": NaN}'

WRITE_ROUTES = [
    ("POST", "/api/jobs"),
    ("POST", "/api/op/qpus/create"),
    ("POST", "/api/op/qpu/toggle"),
    ("POST", "/api/tokens"),
    ("PATCH", "/api/tokens/{token}"),
    ("PATCH", "/api/admin/users/{user}"),
    ("POST", "/api/collections/users/auth-with-password"),
    ("POST", "/api/collections/time_slots/records"),
    ("PATCH", "/api/collections/time_slots/records/x"),
    ("POST", "/api/collections/qpu_time_requests/records"),
    ("POST", "/api/collections/notifications/records"),
    ("POST", "/api/collections/quantum_jobs/records"),
    ("POST", "/api/collections/api_tokens/records"),
    ("POST", "/api/collections/qpus/records"),
    ("PATCH", "/api/collections/users/records/{user}"),
]


def snapshot(rest: Rest) -> dict[str, object]:
    http = rest.http
    return {
        "jobs": http.get("/api/collections/quantum_jobs/records", headers=rest.admin).json(),
        "qpus": http.get("/api/qpus", headers=rest.admin).json(),
        "tokens": http.get("/api/collections/api_tokens/records", headers=rest.admin).json(),
        "slots": http.get("/api/collections/time_slots/records", headers=rest.admin).json(),
        "reqs": http.get("/api/collections/qpu_time_requests/records", headers=rest.admin).json(),
        "notes": http.get("/api/collections/notifications/records", headers=rest.admin).json(),
        "users": http.get("/api/collections/users/records", headers=rest.admin).json(),
    }


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"\xff\xfe",
        b'{"name": NaN, "seconds": NaN, "qpu_seconds": NaN, "id": NaN, "title": NaN}',
    ],
    ids=["malformed", "array", "string", "null", "binary", "nan"],
)
def test_malformed_bodies_rejected_everywhere(rest: Rest, content: bytes) -> None:
    token = rest.http.post("/api/tokens", json={"name": "t"}, headers=rest.a).json()["id"]
    before = snapshot(rest)
    for method, path in WRITE_ROUTES:
        url = path.format(token=token, user=rest.a_id)
        for headers in (rest.admin, rest.a):
            resp = rest.http.request(
                method,
                url,
                content=content,
                headers={**headers, "Content-Type": "application/json"},
            )
            envelope(resp, 400, 403, 404)
    assert snapshot(rest) == before


WRONG_TYPES = [
    ("POST", "/api/jobs", {"circuits": "OPENQASM 2.0;"}),
    ("POST", "/api/jobs", {"circuits": [{"circuit": ["x"]}]}),
    ("POST", "/api/jobs", {"circuits": [{"circuit": "x", "parameter_values": "abc"}]}),
    ("POST", "/api/jobs", {"circuits": [{"circuit": "x"}], "meas_return": "sometimes"}),
    ("POST", "/api/jobs", {"circuits": [{"circuit": "x"}], "shots": -1}),
    ("POST", "/api/jobs", {"circuits": [{"circuit": "x"}], "qpu_target": 7}),
    ("POST", "/api/op/qpus/create", {"name": 5}),
    ("POST", "/api/op/qpus/create", {"name": "n", "num_qubits": "five"}),
    ("POST", "/api/op/qpus/create", {"name": "n", "num_qubits": 10**12}),
    ("POST", "/api/op/qpu/toggle", {"id": "x", "enabled": "yes"}),
    ("POST", "/api/tokens", {"name": ["x"]}),
    ("PATCH", "/api/admin/users/{user}", {"qpu_seconds": "lots"}),
    ("PATCH", "/api/admin/users/{user}", {"qpu_seconds": -5}),
    ("POST", "/api/collections/time_slots/records", {"start_time": 5, "end_time": "x"}),
    ("POST", "/api/collections/qpu_time_requests/records", {"seconds": -3}),
    ("POST", "/api/collections/notifications/records", {"title": "t", "target_users": 5}),
    ("POST", "/api/collections/qpus/records", {"name": "q", "enabled": "true"}),
    ("PATCH", "/api/collections/users/records/{user}", {"qpu_seconds": 1e300}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRONG_TYPES)
def test_wrong_types_rejected(rest: Rest, method: str, path: str, body: object) -> None:
    before = snapshot(rest)
    resp = rest.http.request(method, path.format(user=rest.a_id), json=body, headers=rest.admin)
    envelope(resp, 400)
    assert snapshot(rest) == before


def test_other_users_ids_are_not_reachable(rest: Rest, bell_qasm: str) -> None:
    rest.server.register_qpu("idle", 2)
    job = rest.http.post(
        "/api/jobs",
        json={"circuits": [{"circuit": bell_qasm}], "qpu_target": "idle"},
        headers=rest.a,
    ).json()
    token = rest.http.post("/api/tokens", json={"name": "t"}, headers=rest.a).json()
    before = snapshot(rest)
    for method, url in [
        ("GET", f"/api/jobs/{job['id']}"),
        ("POST", f"/api/jobs/{job['id']}/cancel"),
        ("GET", f"/api/tokens/{token['id']}"),
        ("DELETE", f"/api/tokens/{token['id']}"),
        ("GET", f"/api/collections/quantum_jobs/records/{job['id']}"),
        ("GET", f"/api/collections/users/records/{rest.a_id}"),
        ("PATCH", f"/api/collections/users/records/{rest.a_id}"),
        ("DELETE", f"/api/collections/users/records/{rest.a_id}"),
    ]:
        envelope(rest.http.request(method, url, json={"name": "x"}, headers=rest.b), 403, 404)
    assert snapshot(rest) == before


def test_huge_bodies_are_413(rest: Rest) -> None:
    before = snapshot(rest)
    huge = b'{"circuits": [{"circuit": "' + b"h" * (80 * 1024 * 1024) + b'"}]}'
    envelope(rest.http.post("/api/jobs", content=huge, headers=rest.a), 413)

    def chunks():  # no Content-Length: streamed
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    envelope(
        rest.http.post(
            "/api/collections/notifications/records", content=chunks(), headers=rest.admin
        ),
        413,
    )
    assert snapshot(rest) == before


def test_unknown_routes_and_methods(rest: Rest) -> None:
    envelope(rest.http.get("/api/nope"), 404)
    envelope(rest.http.put("/api/jobs", json={}), 405)
    envelope(rest.http.get("/api/collections/secrets/records", headers=rest.admin), 404)
    envelope(rest.http.get("/api/collections/drivers/records/x", headers=rest.admin), 404)
    resp = rest.http.get("/dashboard/")
    assert resp.status_code in (200, 404)
    assert resp.headers["content-type"].startswith("text/html")


def test_filter_injection_attempts(rest: Rest) -> None:
    rest.http.post(
        "/api/collections/qpu_time_requests/records", json={"seconds": 5}, headers=rest.a
    )
    for bad in [
        "id != '' || 1=1",
        "1=1",
        "user = '' || true",
        "id = '1' OR 1=1 --",
        "user = @request.auth.id",
        "id ~ '%' || user != ''\x00",
    ]:
        resp = rest.http.get(
            "/api/collections/qpu_time_requests/records", params={"filter": bad}, headers=rest.b
        )
        envelope(resp, 400)
    # A valid but broad filter still only shows the caller's records.
    broad = rest.http.get(
        "/api/collections/qpu_time_requests/records",
        params={"filter": "id != '' || user != ''"},
        headers=rest.b,
    ).json()
    assert broad["totalItems"] == 0
