"""Notifications, time slots, time requests, users and API tokens are listed in SQL: every
filter, sort and page equals the gateway's record semantics (its Python evaluator, the
oracle, over everything the caller may see), owners see only their own records, and
unknown fields are refused before any work. Runs on SQLite and PostgreSQL
(``QPI_TEST_DATABASE=postgres``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qpi.gateway import filters
from qpi.gateway.listing import parse_sort
from tests.integration.gateway.conftest import Rest, envelope
from tests.support.sort_oracle import sort_records

BASE = "/api/collections"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.000Z")


def _all(rest: Rest, name: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    page = rest.http.get(f"{BASE}/{name}/records", params={"perPage": "500"}, headers=headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["totalItems"] == len(body["items"])
    return list(body["items"])


def _oracle(
    records: Sequence[Mapping[str, Any]],
    fields: frozenset[str],
    filter_text: str,
    sort_text: str,
    default: str,
) -> list[str]:
    keys = parse_sort(sort_text, fields) or parse_sort(default, fields)
    chosen = filters.select(filters.parse(filter_text, fields), records)
    by_id = sorted(chosen, key=lambda r: r["id"], reverse=keys[-1].descending)
    return [r["id"] for r in sort_records(by_id, keys)]


def _check(
    rest: Rest,
    name: str,
    headers: dict[str, str],
    fields: frozenset[str],
    default: str,
    cases: Sequence[tuple[str, str]],
) -> None:
    records = _all(rest, name, headers)
    for filter_text, sort_text in cases:
        expected = _oracle(records, fields, filter_text, sort_text, default)
        params = {"filter": filter_text, "sort": sort_text, "perPage": "500"}
        resp = rest.http.get(f"{BASE}/{name}/records", params=params, headers=headers)
        assert resp.status_code == 200, (name, params, resp.text)
        page = resp.json()
        assert [r["id"] for r in page["items"]] == expected, (name, filter_text, sort_text)
        assert page["totalItems"] == len(expected)
        if len(expected) > 2:
            # The second page of two starts where the first ended.
            params = {**params, "perPage": "2", "page": "2", "skipTotal": "1"}
            paged = rest.http.get(f"{BASE}/{name}/records", params=params, headers=headers)
            assert [r["id"] for r in paged.json()["items"]] == expected[2:4]
            assert paged.json()["totalItems"] == -1


@pytest.fixture
def notes(rest: Rest) -> list[str]:
    """Seven notifications: broadcast, targeted at A, at B, at both, past, future, and
    one A dismissed."""
    now = datetime.now(UTC)
    specs: list[dict[str, Any]] = [
        {"title": "Maintenance Friday", "description": "cryostat"},
        {"title": "for_a", "target_users": [rest.a_id]},
        {"title": "for b", "target_users": [rest.b_id]},
        {"title": "Both", "target_users": [rest.a_id, rest.b_id]},
        {"title": "past", "end_time": _iso(now - timedelta(hours=1))},
        {"title": "future", "start_time": _iso(now + timedelta(hours=1))},
        {"title": "dismissed by a", "description": "old news"},
    ]
    ids = []
    for spec in specs:
        resp = rest.http.post(f"{BASE}/notifications/records", json=spec, headers=rest.admin)
        assert resp.status_code == 200, resp.text
        ids.append(resp.json()["id"])
    dismissed = rest.http.post(f"/api/notifications/{ids[-1]}/dismiss", headers=rest.a)
    assert dismissed.status_code == 200
    return ids


def test_notifications_feed_and_filters_run_in_sql(rest: Rest, notes: list[str]) -> None:
    fields = frozenset(
        {"id", "title", "description", "target_users", "start_time", "end_time"}
        | {"created", "updated"}
    )
    feed = {r["title"] for r in _all(rest, "notifications", rest.a)}
    assert feed == {"Maintenance Friday", "for_a", "Both"}
    assert {r["title"] for r in _all(rest, "notifications", rest.b)} == {
        "Maintenance Friday",
        "for b",
        "Both",
        "dismissed by a",
    }
    cases = [
        ("", ""),
        ("title ~ 'MAINT'", ""),
        ("title ~ 'for_'", "title"),
        ("description != ''", "-title"),
        (f"target_users = '{rest.a_id}'", "title"),
        (f"target_users != '{rest.a_id}'", "title"),
        ("target_users = ''", "-created"),
        ("target_users != ''", "title"),
        (f"target_users ~ '{rest.b_id[:5]}'", "title"),
        ("end_time = '' && start_time = ''", "title"),
        ("start_time > @now || end_time < @now", "title"),
        ("title > 'M'", "-title"),
    ]
    _check(rest, "notifications", rest.admin, fields, "-created", cases)
    _check(rest, "notifications", rest.a, fields, "-created", cases[:4] + cases[6:8])


def test_time_slots_and_requests_filter_sort_and_page_in_sql(rest: Rest) -> None:
    qpu = rest.server.register_qpu("slotted", 2)[0]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for i in range(6):
        headers = rest.a if i % 2 else rest.b
        body = {
            "start_time": _iso(start + timedelta(hours=2 * i)),
            "end_time": _iso(start + timedelta(hours=2 * i + 1)),
            "qpu": qpu if i % 3 else "",
        }
        resp = rest.http.post(f"{BASE}/time_slots/records", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
    mid = _iso(start + timedelta(hours=5))
    slot_fields = frozenset({"id", "start_time", "end_time", "booked_by", "qpu", "created"})
    _check(
        rest,
        "time_slots",
        rest.a,
        slot_fields,
        "start_time",
        [
            ("", ""),
            ("", "-start_time"),
            (f"booked_by = '{rest.a_id}'", "-end_time"),
            ("qpu = ''", ""),
            (f"qpu = '{qpu}' || qpu = ''", "qpu,-start_time"),
            (f"start_time > '{mid}'", "start_time"),
            ("end_time > @now", "booked_by,start_time"),
        ],
    )
    for i, headers in enumerate((rest.a, rest.a, rest.b, rest.a)):
        body = {"seconds": 10 * (i + 1), "requested_reason": f"Run #{i} for_science"}
        resp = rest.http.post(f"{BASE}/qpu_time_requests/records", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
    mine = _all(rest, "qpu_time_requests", rest.a)
    assert {r["user"] for r in mine} == {rest.a_id}
    approved = rest.http.patch(
        f"{BASE}/qpu_time_requests/records/{mine[0]['id']}",
        json={"status": "approved"},
        headers=rest.admin,
    )
    assert approved.status_code == 200, approved.text
    request_fields = frozenset(
        {"id", "user", "seconds", "status", "requested_reason", "rejection_reason"}
        | {"handled_by", "created"}
    )
    cases = [
        ("", ""),
        ("status = 'pending'", "-seconds"),
        ("status ~ 'APP'", ""),
        ("status !~ 'pend'", "seconds"),
        ("seconds >= 20", "-created"),
        ("requested_reason ~ 'for_sci'", "requested_reason"),
        (f"user != '{rest.a_id}'", ""),
    ]
    _check(rest, "qpu_time_requests", rest.admin, request_fields, "-created", cases)
    _check(rest, "qpu_time_requests", rest.a, request_fields, "-created", cases)


def test_users_and_tokens_filter_sort_and_page_in_sql(rest: Rest) -> None:
    for i in range(4):
        rest.server.create_user(f"u{i}_list@example.com", qpu_seconds=float(i))
    user_fields = frozenset(
        {"id", "email", "name", "qpu_seconds", "verified", "emailVisibility"}
        | {"created", "updated"}
    )
    _check(
        rest,
        "users",
        rest.admin,
        user_fields,
        "email",
        [
            ("", ""),
            ("email ~ '_list'", "-email"),
            ("qpu_seconds > 1", "qpu_seconds"),
            ("verified = true && emailVisibility = false", "-qpu_seconds,email"),
            ("verified = false", ""),
            ("email > 'u1'", "verified,email"),
        ],
    )
    assert [r["id"] for r in _all(rest, "users", rest.a)] == [rest.a_id]
    listed = rest.http.get(
        f"{BASE}/users/records", params={"filter": "email ~ 'list'"}, headers=rest.a
    )
    assert listed.json()["items"] == []
    for i, headers in enumerate((rest.a, rest.a, rest.b)):
        resp = rest.http.post("/api/tokens", json={"name": f"tok_{i}"}, headers=headers)
        assert resp.status_code == 201, resp.text
    token_fields = frozenset({"id", "name", "user", "expires_at", "created"})
    cases = [("", ""), ("name ~ 'tok_'", "name"), ("expires_at = ''", "-name")]
    _check(rest, "api_tokens", rest.admin, token_fields, "-created", cases)
    _check(rest, "api_tokens", rest.a, token_fields, "-created", cases)
    assert {r["user"] for r in _all(rest, "api_tokens", rest.a)} == {rest.a_id}
    names = [
        t["name"]
        for t in rest.http.get(
            "/api/tokens", params={"sort": "-name", "skip": "1", "limit": "1"}, headers=rest.a
        ).json()
    ]
    own = sorted((t["name"] for t in _all(rest, "api_tokens", rest.a)), reverse=True)
    assert names == own[1:2]


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("notifications", "secret = 1"),
        ("time_slots", "booked_by.email ~ 'x'"),
        ("qpu_time_requests", "status ~ 1 ||"),
    ],
)
def test_unknown_fields_are_refused(rest: Rest, name: str, bad: str) -> None:
    resp = rest.http.get(f"{BASE}/{name}/records", params={"filter": bad}, headers=rest.admin)
    envelope(resp, 400)
