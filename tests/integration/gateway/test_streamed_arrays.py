"""The bare-array routes (``GET /api/jobs``, ``/api/tokens``, ``/api/qpus``; ``limit=0``
means all) stream their array a server page at a time, encoding each page off the event
loop: all of a user's 10^5 jobs once held the loop for seconds."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from qpi.gateway import paging
from qpi.gateway.routes import jobs as job_routes
from tests.integration.gateway.conftest import Rest
from tests.support.job_seed import seed_jobs

JOBS = "/api/collections/quantum_jobs/records"


def _newest_first(rest: Rest) -> list[str]:
    """A's job ids, newest first, from the collection listing (another code path)."""
    page = rest.http.get(JOBS, params={"perPage": "500"}, headers=rest.a).json()
    return [r["id"] for r in page["items"]]


def test_every_page_is_streamed_in_order(rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paging, "PAGE_SIZE", 4)  # 23 jobs: six server pages
    qpu = rest.server.register_qpu("streamed", 2)[0]  # type: ignore[attr-defined]
    seed_jobs(rest.server.settings.effective_database_url, [rest.a_id], [qpu], 23)  # type: ignore[attr-defined]
    expected = _newest_first(rest)
    assert len(expected) == 23

    every = rest.http.get("/api/jobs", headers=rest.a)
    assert every.status_code == 200
    assert every.headers["content-type"] == "application/json"
    jobs = every.json()
    assert [j["id"] for j in jobs] == expected
    finished = [j for j in jobs if j["status"] == "completed"]
    assert finished
    assert all("finished_at" in j and "results" in j for j in finished)
    assert all("finished_at" not in j for j in jobs if j["status"] == "pending")

    window = rest.http.get("/api/jobs", params={"skip": "3", "limit": "9"}, headers=rest.a)
    assert [j["id"] for j in window.json()] == expected[3:12]
    beyond = rest.http.get("/api/jobs", params={"skip": "23"}, headers=rest.a)
    assert beyond.json() == []

    for i in range(6):
        made = rest.http.post("/api/tokens", json={"name": f"streamed {i}"}, headers=rest.a)
        assert made.status_code == 201, made.text
    tokens = rest.http.get("/api/tokens", params={"sort": "name"}, headers=rest.a).json()
    names = [t["name"] for t in tokens if t["name"].startswith("streamed")]
    assert names == [f"streamed {i}" for i in range(6)]
    qpus = rest.http.get("/api/qpus", headers=rest.a).json()
    assert "streamed" in {q["name"] for q in qpus}


def test_refusals_are_ordinary_error_responses(rest: Rest) -> None:
    refused = rest.http.get("/api/jobs", headers={"X-API-Token": "qpi_" + "0" * 64})
    assert refused.status_code == 401
    assert refused.json()["status"] == 401


def test_pages_are_encoded_off_the_event_loop(rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a page of the array is being encoded, the server answers other requests: the
    encoder below waits until one was answered (it would wait forever on the loop)."""
    qpu = rest.server.register_qpu("loop", 2)[0]  # type: ignore[attr-defined]
    seed_jobs(rest.server.settings.effective_database_url, [rest.a_id], [qpu], 5)  # type: ignore[attr-defined]
    encoding, answered = threading.Event(), threading.Event()
    encode = job_routes._ENCODE_JOBS

    def held(page: Sequence[Any]) -> bytes:
        encoding.set()
        assert answered.wait(30), "no other request was answered while a page was encoded"
        return encode(page)

    monkeypatch.setattr(job_routes, "_ENCODE_JOBS", held)
    result: dict[str, Any] = {}

    def list_all() -> None:
        with httpx.Client(base_url=rest.http.base_url, timeout=60) as http:
            result["response"] = http.get("/api/jobs", headers=rest.a)

    lister = threading.Thread(target=list_all)
    lister.start()
    try:
        assert encoding.wait(30)
        other = rest.http.get("/api/pub/server-info", timeout=20)
        assert other.status_code == 200
    finally:
        answered.set()
        lister.join(60)
    assert [j["id"] for j in result["response"].json()] == _newest_first(rest)


def test_a_large_server_page_arrives_whole_and_in_order(rest: Rest) -> None:
    """130 jobs in one server page: the servicer converts pages that large off the loop."""
    qpu = rest.server.register_qpu("large", 2)[0]  # type: ignore[attr-defined]
    seed_jobs(rest.server.settings.effective_database_url, [rest.a_id], [qpu], 130)  # type: ignore[attr-defined]
    expected = _newest_first(rest)
    assert len(expected) == 130
    assert [j["id"] for j in rest.http.get("/api/jobs", headers=rest.a).json()] == expected
