"""Collection API against a real server (§4.3, §12 items 5, 6, 11–13)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.gateway.conftest import Rest, envelope

SLOTS = "/api/collections/time_slots/records"
REQUESTS = "/api/collections/qpu_time_requests/records"
NOTES = "/api/collections/notifications/records"
TOKENS = "/api/collections/api_tokens/records"
QPUS = "/api/collections/qpus/records"


def at(minutes: float) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_time_slots(rest: Rest) -> None:
    """§12.5."""
    http = rest.http
    seeded = http.post(
        SLOTS,
        json={"start_time": at(-2), "end_time": at(5), "booked_by": rest.a_id},
        headers=rest.admin,
    )
    assert seeded.status_code == 200, seeded.text
    slot = seeded.json()
    assert slot["booked_by"] == rest.a_id
    listed = http.get(
        SLOTS, params={"sort": "start_time", "expand": "booked_by"}, headers=rest.a_session
    ).json()
    assert listed["totalItems"] == 1
    assert listed["items"][0]["expand"]["booked_by"]["email"] == "a@example.com"
    assert http.get(f"{SLOTS}/{slot['id']}", headers=rest.a_session).status_code == 200
    past = envelope(
        http.post(SLOTS, json={"start_time": at(-120), "end_time": at(-60)}, headers=rest.a), 400
    )
    assert "past" in past["message"].lower()
    assert (
        http.post(
            SLOTS, json={"start_time": at(-120), "end_time": at(-60)}, headers=rest.admin
        ).status_code
        == 200
    )
    future = http.post(SLOTS, json={"start_time": at(60), "end_time": at(120)}, headers=rest.a)
    assert future.status_code == 200, future.text
    future_id = future.json()["id"]
    overlap = envelope(
        http.post(SLOTS, json={"start_time": at(90), "end_time": at(150)}, headers=rest.a), 400, 409
    )
    assert "overlap" in overlap["message"].lower()
    inverted = envelope(
        http.post(SLOTS, json={"start_time": at(300), "end_time": at(240)}, headers=rest.a), 400
    )
    assert "before" in inverted["message"].lower()
    started = envelope(
        http.patch(f"{SLOTS}/{slot['id']}", json={"end_time": at(6)}, headers=rest.a), 400
    )
    assert "started" in started["message"].lower()
    assert (
        http.patch(
            f"{SLOTS}/{slot['id']}", json={"end_time": at(6)}, headers=rest.admin
        ).status_code
        == 200
    )
    resched = envelope(
        http.patch(
            f"{SLOTS}/{future_id}",
            json={"start_time": at(-30), "end_time": at(-20)},
            headers=rest.a,
        ),
        400,
    )
    assert "past" in resched["message"].lower()
    envelope(
        http.patch(f"{SLOTS}/{future_id}", json={"end_time": at(130)}, headers=rest.b), 403, 404
    )
    envelope(http.delete(f"{SLOTS}/{future_id}", headers=rest.b), 403, 404)
    envelope(http.delete(f"{SLOTS}/{slot['id']}", headers=rest.a), 400)
    assert http.delete(f"{SLOTS}/{slot['id']}", headers=rest.admin).status_code == 204
    assert http.delete(f"{SLOTS}/{future_id}", headers=rest.a).status_code == 204


def test_time_requests(rest: Rest) -> None:
    """§12.6."""
    http = rest.http
    created = http.post(
        REQUESTS,
        json={
            "seconds": 300,
            "requested_reason": "thesis",
            "status": "approved",
            "user": rest.b_id,
        },
        headers=rest.a_session,
    )
    assert created.status_code == 200, created.text
    req = created.json()
    assert req["status"] == "pending"
    assert req["user"] == rest.a_id
    envelope(http.post(REQUESTS, json={"seconds": 0}, headers=rest.a), 400)
    envelope(http.post(REQUESTS, json={"seconds": "lots"}, headers=rest.a), 400)
    own = http.get(REQUESTS, params={"expand": "user"}, headers=rest.a).json()
    assert [r["id"] for r in own["items"]] == [req["id"]]
    assert own["items"][0]["expand"]["user"]["email"] == "a@example.com"
    assert http.get(REQUESTS, headers=rest.b).json()["totalItems"] == 0
    envelope(http.get(f"{REQUESTS}/{req['id']}", headers=rest.b), 403, 404)
    envelope(http.delete(f"{REQUESTS}/{req['id']}", headers=rest.b), 403, 404)
    second = http.post(REQUESTS, json={"seconds": 10}, headers=rest.a).json()
    assert http.delete(f"{REQUESTS}/{second['id']}", headers=rest.a).status_code == 204
    envelope(
        http.patch(f"{REQUESTS}/{req['id']}", json={"status": "approved"}, headers=rest.a), 403, 404
    )
    envelope(
        http.patch(f"{REQUESTS}/{req['id']}", json={"requested_reason": "x"}, headers=rest.a), 403
    )
    envelope(
        http.patch(
            f"{REQUESTS}/{req['id']}",
            json={"seconds": 9000, "status": "approved"},
            headers=rest.admin,
        ),
        400,
    )
    before = rest.balance(rest.a_id)
    approved = http.patch(
        f"{REQUESTS}/{req['id']}", json={"status": "approved"}, headers=rest.admin
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["handled_by"]
    assert abs(rest.balance(rest.a_id) - (before + 300)) < 0.01
    envelope(
        http.patch(f"{REQUESTS}/{req['id']}", json={"status": "pending"}, headers=rest.admin), 400
    )
    envelope(
        http.patch(f"{REQUESTS}/{req['id']}", json={"status": "rejected"}, headers=rest.admin), 400
    )
    envelope(http.delete(f"{REQUESTS}/{req['id']}", headers=rest.a), 400, 403, 404)
    third = http.post(REQUESTS, json={"seconds": 50}, headers=rest.a).json()
    rejected = http.patch(
        f"{REQUESTS}/{third['id']}",
        json={"status": "rejected", "rejection_reason": "no"},
        headers=rest.admin,
    )
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["rejection_reason"] == "no"
    assert abs(rest.balance(rest.a_id) - (before + 300)) < 0.01


def test_notifications(rest: Rest) -> None:
    """§12.11."""
    http = rest.http
    broadcast = http.post(
        NOTES, json={"title": "All", "start_time": at(-60), "end_time": at(60)}, headers=rest.admin
    ).json()
    targeted = http.post(
        NOTES, json={"title": "A only", "target_users": [rest.a_id]}, headers=rest.admin
    ).json()
    future = http.post(
        NOTES,
        json={"title": "Later", "start_time": at(120), "end_time": at(180)},
        headers=rest.admin,
    ).json()
    assert targeted["target_users"] == [rest.a_id]

    def titles(headers: dict[str, str]) -> set[str]:
        items = http.get(NOTES, params={"sort": "-created"}, headers=headers).json()["items"]
        assert all("dismissed_by" not in n for n in items)
        return {n["title"] for n in items}

    assert titles(rest.a) == {"All", "A only"}
    assert titles(rest.b_session) == {"All"}
    assert http.post(f"/api/notifications/{broadcast['id']}/dismiss", headers=rest.a).json() == {
        "status": "dismissed"
    }
    assert (
        http.post(f"/api/notifications/{broadcast['id']}/dismiss", headers=rest.a).status_code
        == 200
    )
    assert titles(rest.a) == {"A only"}
    assert titles(rest.b) == {"All"}

    # One record: the feed's visibility, dismissed ones included; targets for admins only.
    def one(note: dict[str, object], headers: dict[str, str]) -> httpx.Response:
        return http.get(f"{NOTES}/{note['id']}", headers=headers)

    mine = one(targeted, rest.a).json()
    assert (mine["title"], mine["target_users"], mine["dismissed"]) == ("A only", [], False)
    assert one(targeted, rest.admin).json()["target_users"] == [rest.a_id]
    assert one(broadcast, rest.a).json()["dismissed"] is True
    assert one(broadcast, rest.b).json()["dismissed"] is False
    envelope(one(targeted, rest.b), 404)
    envelope(one(future, rest.a), 404)
    assert one(future, rest.admin).json()["title"] == "Later"
    envelope(http.post(f"/api/notifications/{targeted['id']}/dismiss", headers=rest.b), 403, 404)
    envelope(http.post(NOTES, json={"title": "x"}, headers=rest.a), 403)
    envelope(
        http.patch(f"{NOTES}/{broadcast['id']}", json={"title": "x"}, headers=rest.a), 403, 404
    )
    envelope(http.delete(f"{NOTES}/{broadcast['id']}", headers=rest.a), 403, 404)
    patched = http.patch(
        f"{NOTES}/{broadcast['id']}", json={"title": "Renamed"}, headers=rest.admin
    )
    assert patched.json()["title"] == "Renamed"
    assert "Later" in {n["title"] for n in http.get(NOTES, headers=rest.admin).json()["items"]}
    for note in (broadcast, targeted, future):
        assert http.delete(f"{NOTES}/{note['id']}", headers=rest.admin).status_code == 204
    envelope(http.post(NOTES, json={"description": "no title"}, headers=rest.admin), 400)


def test_api_tokens_collection(rest: Rest) -> None:
    """§12.12: owners only; the hash is never shown."""
    http = rest.http
    created = http.post(TOKENS, json={"name": "script"}, headers=rest.a_session)
    assert created.status_code == 200, created.text
    token = created.json()
    assert token["token"].startswith("qpi_")
    listed = http.get(TOKENS, headers=rest.a_session).json()["items"]
    assert token["id"] in {t["id"] for t in listed}
    assert all("token" not in t and "hash" not in t for t in listed)
    assert http.get(f"{TOKENS}/{token['id']}", headers=rest.a).json()["user"] == rest.a_id
    assert (
        http.patch(f"{TOKENS}/{token['id']}", json={"name": "n2"}, headers=rest.a).json()["name"]
        == "n2"
    )
    assert token["id"] not in {t["id"] for t in http.get(TOKENS, headers=rest.b).json()["items"]}
    envelope(http.get(f"{TOKENS}/{token['id']}", headers=rest.b), 403, 404)
    envelope(http.patch(f"{TOKENS}/{token['id']}", json={"name": "x"}, headers=rest.b), 403, 404)
    envelope(http.delete(f"{TOKENS}/{token['id']}", headers=rest.b), 403, 404)
    assert http.delete(f"{TOKENS}/{token['id']}", headers=rest.a).status_code == 204


def test_api_token_registered_by_digest_authenticates(rest: Rest) -> None:
    """§12 seed: a client stores SHA-256 of its own token, then authenticates with it.

    Unlike the original seed's `test-api-token-abc-123`, the token must have the server's
    format (issue 12.6): any other secret is never accepted.
    """
    http = rest.http
    secret = "qpi_" + "ab12" * 16
    digest = hashlib.sha256(secret.encode()).hexdigest()
    created = http.post(
        TOKENS, json={"token": digest, "user": rest.a_id, "name": "seed"}, headers=rest.a_session
    )
    assert created.status_code == 200, created.text
    assert "token" not in created.json()
    assert created.json()["user"] == rest.a_id
    jobs = http.get("/api/jobs", headers={"X-API-Token": secret})
    assert jobs.status_code == 200, jobs.text
    assert http.get("/api/jobs", headers={"X-API-Token": secret + "x"}).status_code == 401
    # The same digest twice, a non-digest and somebody else's user id are refused.
    again = http.post(TOKENS, json={"token": digest}, headers=rest.a_session)
    assert "already registered" in envelope(again, 400, 409)["message"]
    weak = {"token": "test-api-token-abc-123"}
    bad = envelope(http.post(TOKENS, json=weak, headers=rest.a_session), 400)
    assert "qpi_ followed by 64" in bad["data"]["token"]["message"]
    other = http.post(TOKENS, json={"token": "0" * 64, "user": rest.a_id}, headers=rest.b)
    envelope(other, 403)
    listed = http.get(TOKENS, headers=rest.b).json()["items"]
    assert all(t["name"] != "seed" for t in listed)


def test_qpus_collection_rules(rest: Rest) -> None:
    """§12.13 (reads need credentials in our server: beyond-original #27)."""
    http = rest.http
    qpu = http.post(
        QPUS, json={"name": "coll", "num_qubits": 3, "status": "online"}, headers=rest.admin
    ).json()
    assert qpu["status"] == "offline"
    assert http.get(QPUS, headers=rest.a).json()["items"][0]["name"] == "coll"
    assert http.get(f"{QPUS}/{qpu['id']}", headers=rest.a).status_code == 200
    envelope(http.post(QPUS, json={"name": "x"}, headers=rest.a), 403)
    envelope(http.patch(f"{QPUS}/{qpu['id']}", json={"num_qubits": 8}, headers=rest.a), 403, 404)
    envelope(http.delete(f"{QPUS}/{qpu['id']}", headers=rest.a), 403, 404)
    assert (
        http.patch(f"{QPUS}/{qpu['id']}", json={"num_qubits": 8}, headers=rest.admin).json()[
            "num_qubits"
        ]
        == 8
    )
    assert http.delete(f"{QPUS}/{qpu['id']}", headers=rest.admin).status_code == 204


def test_jobs_collection(rest: Rest, bell_qasm: str) -> None:
    http = rest.http
    rest.server.register_qpu("idle", 2)
    created = http.post(
        "/api/collections/quantum_jobs/records",
        json={
            "payload": {"circuits": [{"circuit": bell_qasm}]},
            "qpu_target": "idle",
            "status": "completed",
        },
        headers=rest.a,
    )
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["status"] == "pending"
    url = f"/api/collections/quantum_jobs/records/{job['id']}"
    envelope(http.patch(url, json={"status": "completed"}, headers=rest.a), 403)
    envelope(http.delete(url, headers=rest.a), 403)
    envelope(http.patch(url, json={"status": "completed"}, headers=rest.admin), 400)
    assert (
        http.patch(url, json={"status": "cancelled"}, headers=rest.admin).json()["status"]
        == "cancelled"
    )
    page = http.get(
        "/api/collections/quantum_jobs/records",
        params={"filter": "status = 'cancelled'", "sort": "-created", "expand": "qpu_target"},
        headers=rest.admin,
    ).json()
    assert [j["id"] for j in page["items"]] == [job["id"]]
    assert page["items"][0]["expand"]["qpu_target"]["name"] == "idle"
    assert http.get("/api/collections/quantum_jobs/records", headers=rest.b).json()["items"] == []
    poor_id, poor = rest.server.create_user(
        "poor@example.com", password="poorpassword1234", qpu_seconds=0.0
    )
    envelope(
        http.post(
            "/api/collections/quantum_jobs/records",
            json={"payload": {"circuits": [{"circuit": bell_qasm}]}},
            headers={"X-API-Token": poor},
        ),
        403,
    )


def test_users_collection_and_auth(rest: Rest) -> None:
    http = rest.http
    mine = http.get("/api/collections/users/records", headers=rest.a_session).json()
    assert [u["id"] for u in mine["items"]] == [rest.a_id]
    assert "password" not in mine["items"][0]
    everyone = http.get(
        "/api/collections/users/records", params={"sort": "email"}, headers=rest.admin
    ).json()
    assert {"a@example.com", "b@example.com"} <= {u["email"] for u in everyone["items"]}
    envelope(http.get(f"/api/collections/users/records/{rest.b_id}", headers=rest.a), 403, 404)
    wrong = envelope(
        http.post(
            "/api/collections/users/auth-with-password",
            json={"identity": "a@example.com", "password": "nope"},
        ),
        400,
    )
    assert wrong["message"] == "Failed to authenticate."
    envelope(
        http.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": "a@example.com", "password": "userpassword1234"},
        ),
        400,
    )
    refreshed = http.post("/api/collections/users/auth-refresh", headers=rest.a_session).json()
    assert refreshed["record"]["id"] == rest.a_id
    assert refreshed["token"]
    methods = http.get("/api/collections/users/auth-methods").json()
    assert methods["password"]["identityFields"] == ["email"]
    assert set(methods["oauth2"]) == {"enabled", "providers"}
    created = http.post(
        "/api/collections/users/records",
        json={
            "email": "c@example.com",
            "password": "cpassword1234",
            "passwordConfirm": "cpassword1234",
        },
        headers=rest.admin,
    )
    assert created.status_code == 200, created.text
    mismatch = envelope(
        http.post(
            "/api/collections/users/records",
            json={
                "email": "d@example.com",
                "password": "dpassword1234",
                "passwordConfirm": "other",
            },
            headers=rest.admin,
        ),
        400,
    )
    assert "passwordConfirm" in mismatch["data"]


def test_list_paging_and_filter(rest: Rest) -> None:
    http = rest.http
    for i in range(7):
        http.post(
            NOTES,
            json={"title": f"n{i}", "description": "odd" if i % 2 else "even"},
            headers=rest.admin,
        )
    page = http.get(
        NOTES, params={"perPage": 3, "page": 3, "sort": "title"}, headers=rest.admin
    ).json()
    assert (page["page"], page["perPage"], page["totalItems"], page["totalPages"]) == (3, 3, 7, 3)
    assert [n["title"] for n in page["items"]] == ["n6"]
    odd = http.get(
        NOTES,
        params={"filter": "description = 'odd' && (title ~ '1' || title ~ '3')"},
        headers=rest.admin,
    ).json()
    assert {n["title"] for n in odd["items"]} == {"n1", "n3"}
    assert (
        http.get(NOTES, params={"filter": "created <= @now"}, headers=rest.admin).json()[
            "totalItems"
        ]
        == 7
    )
    for bad in [
        "id != '' || 1=1",
        "secret = 'x'",
        "title = ",
        "title = 'a' ; DROP TABLE x",
        "title = 'x' || (",
        "dismissed_by = ''",
    ]:
        envelope(http.get(NOTES, params={"filter": bad}, headers=rest.admin), 400)
    envelope(http.get(NOTES, params={"sort": "-password"}, headers=rest.admin), 400)
    envelope(http.get(NOTES, params={"expand": "title"}, headers=rest.admin), 400)
    envelope(http.get(NOTES, params={"perPage": "many"}, headers=rest.admin), 400)


def test_job_pages_with_and_without_a_no_op_condition_agree(rest: Rest, bell_qasm: str) -> None:
    """Paging by created/status/QPU gives the same pages with an extra no-op condition
    (both run in the server's SQL; tests/integration/gateway/test_job_listing_sql.py
    checks every operator against the record semantics)."""
    http = rest.http
    idle_id, _ = rest.server.register_qpu("idle", 2)
    other_id, _ = rest.server.register_qpu("other", 2)
    jobs = "/api/collections/quantum_jobs/records"
    ids = []
    for i in range(7):
        job = rest.server.submit(rest.a["X-API-Token"], bell_qasm, qpu="idle" if i % 2 else "other")
        ids.append(job.id)
        time.sleep(0.003)  # distinct millisecond timestamps: REST shows ms, ties sort by id
        if i % 3 == 0:
            http.post(f"/api/jobs/{job.id}/cancel", headers=rest.a).raise_for_status()
    queries = [
        {"sort": "-created"},
        {"sort": "created", "filter": "status = 'cancelled'"},
        {"sort": "-created", "filter": f"qpu_target = '{idle_id}' && status = 'pending'"},
        {"filter": f"'{other_id}' = qpu_target"},
    ]
    for query in queries:
        for page in (1, 2, 3):
            params = {**query, "perPage": "2", "page": str(page)}
            fast = http.get(jobs, params=params, headers=rest.a)
            generic_filter = " && ".join(f for f in (query.get("filter"), "id != ''") if f)
            slow = http.get(jobs, params={**params, "filter": generic_filter}, headers=rest.a)
            assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)
            fast_page, slow_page = fast.json(), slow.json()
            assert [j["id"] for j in fast_page["items"]] == [j["id"] for j in slow_page["items"]]
            assert fast_page["totalItems"] == slow_page["totalItems"]
            assert fast_page["totalPages"] == slow_page["totalPages"]
            assert fast_page["items"] == slow_page["items"]
    everything = http.get(jobs, params={"sort": "created", "perPage": "50"}, headers=rest.a)
    assert [j["id"] for j in everything.json()["items"]] == ids
    assert http.get(jobs, params={"perPage": "50"}, headers=rest.b).json()["totalItems"] == 0
