"""Hostile listing queries are refused before any work or stay bounded: huge, deeply
nested or oversized filters are refused with a precise INVALID_FILTER, free-text ``~``
examines at most SCAN_BUDGET rows, counts stop at COUNT_CAP (READ_COUNT_CAP when each match
costs a row read), and a filter never widens what an owner sees."""

from __future__ import annotations

import grpc
import pytest

from qpi.server.store import listing
from qpi.v1 import job_service_pb2, job_service_pb2_grpc, list_query_pb2
from tests.security.conftest import Actors
from tests.support.job_seed import seed_jobs

JOBS = "/api/collections/quantum_jobs/records"


def _condition(value: str) -> list_query_pb2.FilterExpression:
    return list_query_pb2.FilterExpression(
        condition=list_query_pb2.FilterCondition(
            left=list_query_pb2.FilterOperand(field="status"),
            op=list_query_pb2.FILTER_OPERATOR_EQUAL,
            right=list_query_pb2.FilterOperand(text=value),
        )
    )


def _list(actors: Actors, token: str, where: list_query_pb2.FilterExpression) -> grpc.RpcError:
    stub = job_service_pb2_grpc.JobServiceStub(actors.server.channel())
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListJobs(
            job_service_pb2.ListJobsRequest(filter=where, page_size=30),
            metadata=actors.server.auth(token),
            timeout=30,
        )
    return caught.value


def test_oversized_and_nested_filters_are_refused(actors: Actors) -> None:
    http = actors.http
    nested = "(" * 40 + "status = 'pending'" + ")" * 40
    for text in (nested, "status = 'x' || " * 400 + "status = 'y'", "status ~ 'x' &&"):
        resp = http.get(JOBS, params={"filter": text}, headers=actors.alice)
        assert resp.status_code == 400, (text[:40], resp.text)

    token = actors.alice["X-API-Token"]
    deep = _condition("pending")
    for _ in range(40):
        deep = list_query_pb2.FilterExpression(
            all_of=list_query_pb2.FilterTerms(terms=[deep, _condition("running")])
        )
    refused = _list(actors, token, deep)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested" in (refused.details() or "")

    wide = list_query_pb2.FilterExpression(
        any_of=list_query_pb2.FilterTerms(terms=[_condition(str(i)) for i in range(300)])
    )
    refused = _list(actors, token, wide)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "conditions" in (refused.details() or "")


def test_free_text_search_and_counts_are_bounded(
    actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SCAN_BUDGET", 50)
    monkeypatch.setattr(listing, "COUNT_CAP", 120)
    qpu = actors.server.register_qpu("hostile", 2)[0]
    url = actors.server.settings.effective_database_url
    seed_jobs(url, [actors.alice_id, actors.alice_id, actors.bob_id], [qpu], 300)
    http = actors.http

    # A count stops at the cap; the pages beyond it are still served.
    page = http.get(JOBS, params={"perPage": "30"}, headers=actors.alice).json()
    assert page["totalItems"] == 120
    far = http.get(JOBS, params={"perPage": "30", "page": "6"}, headers=actors.alice).json()
    assert len(far["items"]) == 30

    # Free text matches within the newest SCAN_BUDGET candidates, not the whole table.
    newest = http.get(JOBS, params={"perPage": "50"}, headers=actors.alice).json()["items"]
    evil = "%a" * 2000 + "%b"
    for text in ("id ~ ''", f'id ~ "{evil}"', "created ~ '2026'", "updated != created"):
        resp = http.get(JOBS, params={"filter": text, "perPage": "500"}, headers=actors.alice)
        assert resp.status_code == 200, (text[:30], resp.text)
        found = resp.json()
        assert found["totalItems"] <= 50
        assert {r["id"] for r in found["items"]} <= {r["id"] for r in newest}
    everything = http.get(JOBS, params={"filter": "id ~ ''"}, headers=actors.alice).json()
    assert everything["totalItems"] == 50
    # An indexed condition moves the window: the oldest jobs are reachable by date.
    oldest = http.get(JOBS, params={"sort": "created", "perPage": "1"}, headers=actors.alice)
    first = oldest.json()["items"][0]
    narrowed = http.get(
        JOBS,
        params={"filter": f"created <= '{first['created']}' && id ~ '{first['id'][3:9]}'"},
        headers=actors.alice,
    ).json()
    assert [r["id"] for r in narrowed["items"]] == [first["id"]]


def test_counts_that_read_rows_stop_sooner(actors: Actors, monkeypatch: pytest.MonkeyPatch) -> None:
    """A count one index answers alone goes to COUNT_CAP; a count whose filter reads
    columns no single index holds costs a row read per match and stops at READ_COUNT_CAP.
    The pages themselves are the same either way."""
    monkeypatch.setattr(listing, "COUNT_CAP", 120)
    monkeypatch.setattr(listing, "READ_COUNT_CAP", 60)
    qpu = actors.server.register_qpu("counted", 2)[0]
    url = actors.server.settings.effective_database_url
    seed_jobs(url, [actors.alice_id], [qpu], 200)
    http = actors.http

    def listed(text: str, page: int = 1) -> dict[str, object]:
        params = {"filter": text, "perPage": "30", "page": str(page)}
        resp = http.get(JOBS, params=params, headers=actors.alice)
        assert resp.status_code == 200, (text, resp.text)
        return dict(resp.json())

    # (owner, charged seconds, created, id) holds every column: counted to COUNT_CAP.
    assert listed("duration >= 0")["totalItems"] == 120
    # No index holds both the charge and the update time: counted to READ_COUNT_CAP.
    both = "duration >= 0 && updated != ''"
    assert listed(both)["totalItems"] == 60
    # Every match is still reachable page by page, in the same order as without the
    # second condition (which every job meets).
    for page in (1, 4, 7):
        assert listed(both, page)["items"] == listed("duration >= 0", page)["items"]
    last = listed(both, 7)
    assert len(last["items"]) == 20  # type: ignore[arg-type]
    assert last["totalItems"] == 60  # every page reports the same (capped) total


def test_filters_never_widen_an_owners_view(actors: Actors) -> None:
    qpu = actors.server.register_qpu("owned", 2)[0]
    url = actors.server.settings.effective_database_url
    seed_jobs(url, [actors.alice_id, actors.bob_id], [qpu], 40)
    http = actors.http
    for text in (
        f"user_id = '{actors.bob_id}'",
        f"user_id != '{actors.alice_id}'",
        f"user_id ~ '{actors.bob_id[:4]}'",
        "user_id != '' || id != ''",
    ):
        items = http.get(JOBS, params={"filter": text}, headers=actors.alice).json()["items"]
        assert {r["user_id"] for r in items} <= {actors.alice_id}, text
    for name in ("api_tokens", "qpu_time_requests", "users"):
        resp = http.get(
            f"/api/collections/{name}/records",
            params={"filter": "id != ''", "perPage": "500"},
            headers=actors.alice,
        )
        owners = {r.get("user", r.get("id")) for r in resp.json()["items"]}
        assert owners <= {actors.alice_id}, name
