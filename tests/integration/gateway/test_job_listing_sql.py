"""Job listings run in SQL: every operator, sort and page equals the gateway's own
record semantics (the Python evaluator, used here as the oracle), owners see only their
jobs, and no request ever fetches the whole table. Runs on SQLite and PostgreSQL
(``QPI_TEST_DATABASE=postgres``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import insert, select

from qpi.gateway import filters
from qpi.gateway.listing import parse_sort
from qpi.server.store.database import create_db_engine
from qpi.server.store.tables import DriverRow, TelemetryEventRow
from qpi.server.store.types import new_id
from qpi.v1 import job_service_pb2, job_service_pb2_grpc, list_query_pb2
from tests.integration.gateway.conftest import Rest, envelope
from tests.support.job_seed import BASE, seed_jobs
from tests.support.sort_oracle import sort_records

JOBS = "/api/collections/quantum_jobs/records"
FIELDS = frozenset(
    {"id", "user_id", "qpu_target", "qpu_name", "status", "finished_at", "duration"}
    | {"created", "updated"}
)


@pytest.fixture
def seeded(rest: Rest) -> dict[str, Any]:
    """60 jobs of A and 20 of B over three QPUs (one name with `_`), every state.

    The jobs collection has no fetch-all path any more (``list_records`` is the base
    class's 403), so every listing below is answered by the server's SQL.
    """
    qpus = [rest.server.register_qpu(name, 2)[0] for name in ("a_b", "axb", "Idle")]
    url = rest.server.settings.effective_database_url
    seed_jobs(url, [rest.a_id, rest.a_id, rest.a_id, rest.b_id], qpus, 80)
    everything = rest.http.get(JOBS, params={"perPage": "500"}, headers=rest.admin).json()
    return {"qpus": qpus, "all": everything["items"]}


def _oracle(records: Sequence[Mapping[str, Any]], filter_text: str, sort_text: str) -> list[str]:
    """Ids in the order the gateway's evaluator gives (ties as the server breaks them)."""
    keys = parse_sort(sort_text, FIELDS) or parse_sort("-created", FIELDS)
    node = filters.parse(filter_text, FIELDS)
    chosen = filters.select(node, records)
    # Ties are broken by creation, then id (the order of the listing indexes).
    by_id = sorted(chosen, key=lambda r: (r["created"], r["id"]), reverse=keys[-1].descending)
    return [r["id"] for r in sort_records(by_id, keys)]


def _listed(rest: Rest, headers: dict[str, str], filter_text: str, sort_text: str) -> list[str]:
    params = {"filter": filter_text, "sort": sort_text, "perPage": "500"}
    resp = rest.http.get(JOBS, params=params, headers=headers)
    assert resp.status_code == 200, (params, resp.text)
    page = resp.json()
    assert page["totalItems"] == len(page["items"])
    return [item["id"] for item in page["items"]]


def test_every_operator_matches_the_record_semantics(rest: Rest, seeded: dict[str, Any]) -> None:
    records = seeded["all"]
    qpu = seeded["qpus"][2]
    mid = records[40]
    finished = next(r for r in records if r["finished_at"])
    cases = [
        "",
        "status = 'pending'",
        "'pending' = status",
        "status != 'completed'",
        "status ~ 'PEND'",
        "status !~ 'e'",
        "status = null",
        "status > 'f'",
        f"created > '{mid['created']}'",
        f"created >= '{mid['created']}'",
        f"created <= '{mid['created']}'",
        f"created < '{mid['created']}'",
        f"created = '{mid['created']}'",
        f"created != '{mid['created']}'",
        f"'{mid['created']}' < created",
        "created < @now",
        "created > '2026-11-01'",
        "created >= '2026-11-01T08:00:30+01:00'",
        "created ~ '08:00:1'",
        "created > 'abc'",
        "created = 5",
        "created != 5",
        "finished_at = ''",
        "finished_at != ''",
        "finished_at = null",
        f"finished_at > '{finished['finished_at']}'",
        f"finished_at < '{finished['finished_at']}'",
        f"finished_at <= '{finished['finished_at']}'",
        f"finished_at >= '{finished['finished_at']}'",
        f"finished_at = '{finished['finished_at']}'",
        f"finished_at != '{finished['finished_at']}'",
        "finished_at > created",
        "finished_at < created",
        "created >= finished_at",
        "finished_at = updated",
        "finished_at != updated",
        "updated = created",
        "updated != created",
        "duration > 1.5",
        "duration = 0",
        "duration >= '2'",
        "duration != 'abc'",
        "duration = 'abc'",
        "duration < true",
        "duration <= 3.25 && duration > 0.5",
        "qpu_name = 'Idle'",
        "qpu_name ~ 'a_b'",
        "qpu_name ~ 'A%B'",
        "qpu_name ~ 'idle'",
        "qpu_name !~ '%e'",
        "qpu_name > 'axb'",
        f"qpu_target = '{qpu}'",
        f"qpu_target != '{qpu}' && status = 'failed'",
        "qpu_target = ''",
        f"id ~ '{mid['id'][:2]}'",
        f"id = '{mid['id']}'",
        "id != ''",
        "(status = 'pending' || status = 'running') && duration < 3",
        "status = 'failed' || (qpu_name = 'axb' && finished_at = '')",
        "status = 1",
        "status != 1",
    ]
    for text in cases:
        expected = _oracle(records, text, "")
        assert _listed(rest, rest.admin, text, "") == expected, text


def test_sorts_and_pages_match_the_record_semantics(rest: Rest, seeded: dict[str, Any]) -> None:
    records = seeded["all"]
    sorts = [
        "-created",
        "created",
        "status,-created",
        "-finished_at",
        "finished_at",
        "-duration,created",
        "qpu_name",
        "-updated,id",
        "qpu_target,-id",
        "user_id,status,finished_at",
    ]
    for sort in sorts:
        expected = _oracle(records, "", sort)
        assert _listed(rest, rest.admin, "", sort) == expected, sort
    # Pages cut the same order; totals count every match.
    text, sort = "status != 'cancelled'", "status,-finished_at"
    expected = _oracle(records, text, sort)
    got: list[str] = []
    for page in range(1, 20):
        params = {"filter": text, "sort": sort, "perPage": "7", "page": str(page)}
        body = rest.http.get(JOBS, params=params, headers=rest.admin).json()
        assert body["totalItems"] == len(expected)
        assert body["totalPages"] == -(-len(expected) // 7)
        if not body["items"]:
            break
        got += [item["id"] for item in body["items"]]
    assert got == expected
    skipped = rest.http.get(
        JOBS, params={"filter": text, "perPage": "7", "skipTotal": "1"}, headers=rest.admin
    ).json()
    assert (skipped["totalItems"], skipped["totalPages"]) == (-1, -1)
    assert [i["id"] for i in skipped["items"]] == _oracle(records, text, "")[:7]


def test_owners_see_only_their_jobs_whatever_the_filter(rest: Rest, seeded: dict[str, Any]) -> None:
    records = seeded["all"]
    mine = [r for r in records if r["user_id"] == rest.a_id]
    assert len(mine) == 60
    for text in ("", "id != ''", f"user_id = '{rest.b_id}'", f"user_id != '{rest.a_id}'"):
        for headers in (rest.a, rest.a_session):
            assert _listed(rest, headers, text, "") == _oracle(mine, text, ""), text
    theirs = [r for r in records if r["user_id"] == rest.b_id]
    assert _listed(rest, rest.b, "status ~ ''", "created") == _oracle(theirs, "", "created")
    # /api/jobs: the caller's own jobs, sorted and sliced by the server.
    own = rest.http.get("/api/jobs", params={"sort": "-created"}, headers=rest.b).json()
    assert [j["id"] for j in own] == _oracle(theirs, "", "-created")
    sliced = rest.http.get(
        "/api/jobs", params={"sort": "finished_at", "skip": "3", "limit": "5"}, headers=rest.a
    ).json()
    assert [j["id"] for j in sliced] == _oracle(mine, "", "finished_at")[3:8]


def test_bad_filters_are_precise_400s(rest: Rest, seeded: dict[str, Any]) -> None:
    for bad, words in [
        ("password = 'x'", "unknown field 'password'"),
        ("'x' ~ status", "left side of ~"),
        ("status ~ qpu_name", "left side of ~"),
    ]:
        body = envelope(rest.http.get(JOBS, params={"filter": bad}, headers=rest.a), 400)
        assert words in body["message"].lower(), body
    body = envelope(rest.http.get(JOBS, params={"sort": "-payload"}, headers=rest.a), 400)
    assert body["status"] == 400


def test_list_jobs_rpc_filters_sorts_and_pages(rest: Rest, seeded: dict[str, Any]) -> None:
    records = seeded["all"]
    server: Any = rest.server
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    auth = server.auth(server.admin_token)
    condition = list_query_pb2.FilterCondition(
        left=list_query_pb2.FilterOperand(field="duration"),
        op=list_query_pb2.FILTER_OPERATOR_GREATER,
        right=list_query_pb2.FilterOperand(number=0.5),
    )
    request = job_service_pb2.ListJobsRequest(
        all_users=True,
        page_size=9,
        filter=list_query_pb2.FilterExpression(condition=condition),
        sort=[list_query_pb2.SortField(field="finished_at", descending=True)],
        skip_total=True,
    )
    ids: list[str] = []
    while True:
        resp = stub.ListJobs(request, metadata=auth)
        assert resp.total_size == -1
        ids += [j.id for j in resp.jobs]
        if not resp.next_page_token:
            break
        request.page_token = resp.next_page_token
    assert ids == _oracle(records, "duration > 0.5", "-finished_at")
    deep = list_query_pb2.FilterExpression(condition=condition)
    for _ in range(40):
        deep = list_query_pb2.FilterExpression(any_of=list_query_pb2.FilterTerms(terms=[deep]))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListJobs(job_service_pb2.ListJobsRequest(filter=deep), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested" in (caught.value.details() or "")
    unknown = list_query_pb2.SortField(field="payload_json")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListJobs(job_service_pb2.ListJobsRequest(sort=[unknown]), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_telemetry_events_are_listed_in_sql(rest: Rest) -> None:
    """The `events` collection runs filters, sorts and pages in SQL too (administrators)."""
    qpus = [rest.server.register_qpu(name, 2)[0] for name in ("fridge-a", "fridge-b")]
    url = rest.server.settings.effective_database_url
    engine = create_db_engine(url)
    drivers = DriverRow.__table__  # type: ignore[attr-defined]
    events = TelemetryEventRow.__table__  # type: ignore[attr-defined]
    try:
        with engine.begin() as conn:
            found = conn.execute(select(drivers.c.id, drivers.c.qpu_id)).all()
            rows = [
                {
                    "id": new_id(),
                    "driver_id": found[i % len(found)][0],
                    "qpu_id": found[i % len(found)][1],
                    "type": ("temperature", "pressure", "calibration")[i % 3],
                    "payload_json": f'{{"value": {i}}}',
                    "event_time": BASE + timedelta(seconds=7 * i, microseconds=321 * i),
                    "created": BASE,
                }
                for i in range(45)
            ]
            conn.execute(insert(events), rows)
    finally:
        engine.dispose()
    assert {q for _, q in found} == set(qpus)
    path = "/api/collections/events/records"
    everything = rest.http.get(path, params={"perPage": "500"}, headers=rest.admin).json()
    records = everything["items"]
    assert len(records) == 45
    fields = frozenset({"id", "source", "type", "ts", "driver", "qpu"})
    mid = records[20]["ts"]
    cases = [
        ("", "-ts"),
        ("type = 'pressure'", ""),
        ("type ~ 'TEMP' || type ~ 'cal%on'", "type,-ts"),
        (f"ts > '{mid}'", "ts"),
        (f"ts <= '{mid}' && source = '{found[0][0]}'", "-ts"),
        (f"qpu != '{qpus[0]}'", "source,ts"),
    ]
    for text, sort in cases:
        keys = parse_sort(sort, fields) or parse_sort("-ts", fields)
        chosen = filters.select(filters.parse(text, fields), records)
        by_id = sorted(chosen, key=lambda r: r["id"], reverse=keys[-1].descending)
        expected = [r["id"] for r in sort_records(by_id, keys)]
        params = {"filter": text, "sort": sort, "perPage": "500"}
        page = rest.http.get(path, params=params, headers=rest.admin).json()
        assert [r["id"] for r in page["items"]] == expected, (text, sort)
        assert page["totalItems"] == len(expected)
    paged = rest.http.get(
        path, params={"perPage": "10", "page": "2", "skipTotal": "1"}, headers=rest.admin
    ).json()
    assert [r["id"] for r in paged["items"]] == [r["id"] for r in records[10:20]]
    assert paged["totalItems"] == -1
    envelope(rest.http.get(path, headers=rest.a), 403)
    envelope(rest.http.get(path, params={"filter": "'x' ~ type"}, headers=rest.admin), 400)
