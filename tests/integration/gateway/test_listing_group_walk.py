"""Sorts on two or more fields are answered a group of equal first values at a time
(``qpi.server.store.listing._GroupWalk``) rather than by sorting every match: every page
of every such sort, filtered or not, owner's or everyone's, is exactly the slice of the
full sort (the gateway's record semantics over every job fetched, the reference). Runs on
SQLite and PostgreSQL (``QPI_TEST_DATABASE=postgres``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from qpi.gateway import filters
from qpi.gateway.listing import parse_sort
from qpi.server.store import listing
from tests.integration.gateway.conftest import Rest
from tests.support.job_seed import BASE, seed_jobs
from tests.support.sort_oracle import sort_records

JOBS = "/api/collections/quantum_jobs/records"
FIELDS = frozenset(
    {"id", "user_id", "qpu_target", "qpu_name", "status", "finished_at", "duration"}
    | {"created", "updated"}
)
MID = BASE.replace(hour=10).strftime("%Y-%m-%d %H:%M:%S.000Z")

# First fields with large groups (3 QPUs, 5 states, 2 owners, unset finish times, zero
# charges) and small ones (finish and update times), later fields indexed or not.
SORTS = [
    "qpu_name,-created",
    "-qpu_name,created",
    "status,-finished_at",
    "-status,duration,-id",
    "user_id,-created",
    "finished_at,status",
    "-finished_at,-qpu_name",
    "duration,-created",
    "-duration,qpu_name",
    "qpu_target,-created",
    "-qpu_target,status,id",
    "updated,status",
]
FILTERS = ["", "status != 'cancelled'", "qpu_name ~ 'a'", f"created > '{MID}'"]


@pytest.fixture
def seeded(rest: Rest) -> list[dict[str, Any]]:
    """150 jobs of A and 50 of B over three QPUs, every state; every job as a record."""
    qpus = [rest.server.register_qpu(name, 2)[0] for name in ("a_b", "axb", "Idle")]
    url = rest.server.settings.effective_database_url
    seed_jobs(url, [rest.a_id, rest.a_id, rest.a_id, rest.b_id], qpus, 200)
    resp = rest.http.get(JOBS, params={"perPage": "500"}, headers=rest.admin)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pages the group walk answered (the server runs in this process)."""
    calls: list[int] = []
    original = listing._GroupWalk.page

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(listing._GroupWalk, "page", counted)
    return calls


def _reference(records: Sequence[Mapping[str, Any]], filter_text: str, sort: str) -> list[str]:
    """The full sort of every match (ties by creation, then id, as the server breaks them)."""
    keys = parse_sort(sort, FIELDS)
    chosen = filters.select(filters.parse(filter_text, FIELDS), records)
    by_tie = sorted(chosen, key=lambda r: (r["created"], r["id"]), reverse=keys[-1].descending)
    return [r["id"] for r in sort_records(by_tie, keys)]


def _page(
    rest: Rest, headers: dict[str, str], filter_text: str, sort: str, page: int, per_page: int
) -> dict[str, Any]:
    params = {"filter": filter_text, "sort": sort, "perPage": str(per_page), "page": str(page)}
    resp = rest.http.get(JOBS, params=params, headers=headers)
    assert resp.status_code == 200, (params, resp.text)
    body: dict[str, Any] = resp.json()
    return body


def test_every_page_of_a_two_field_sort_is_the_full_sorts_slice(
    rest: Rest, seeded: list[dict[str, Any]], walks: list[int]
) -> None:
    for sort in SORTS:
        for filter_text in FILTERS:
            expected = _reference(seeded, filter_text, sort)
            whole = _page(rest, rest.admin, filter_text, sort, 1, 500)
            assert [r["id"] for r in whole["items"]] == expected, (sort, filter_text)
            assert whole["totalItems"] == len(expected)
            # Pages of 13 (page boundaries inside groups, groups inside pages) up to one
            # past the end, which is empty.
            got: list[str] = []
            for page in range(1, len(expected) // 13 + 3):
                items = _page(rest, rest.admin, filter_text, sort, page, 13)["items"]
                assert [r["id"] for r in items] == expected[(page - 1) * 13 : page * 13], (
                    sort,
                    filter_text,
                    page,
                )
                got += [r["id"] for r in items]
            assert got == expected
    assert len(walks) > len(SORTS) * len(FILTERS) * 10


def test_owners_pages_of_a_two_field_sort(
    rest: Rest, seeded: list[dict[str, Any]], walks: list[int]
) -> None:
    mine = [r for r in seeded if r["user_id"] == rest.a_id]
    assert len(mine) == 150
    for sort in ("qpu_name,-created", "status,-finished_at", "-duration,qpu_name"):
        expected = _reference(mine, "", sort)
        for page in (1, 2, 5, 6):
            items = _page(rest, rest.a, "", sort, page, 30)["items"]
            assert [r["id"] for r in items] == expected[(page - 1) * 30 : page * 30], (sort, page)
    assert walks


def test_first_fields_that_break_ties_use_one_statement(
    rest: Rest, seeded: list[dict[str, Any]], walks: list[int]
) -> None:
    for sort in ("created,status", "-id,status", "status"):
        expected = _reference(seeded, "", sort)
        assert [r["id"] for r in _page(rest, rest.admin, "", sort, 2, 30)["items"]] == (
            expected[30:60]
        )
    assert not walks


def test_ranges_off_the_sort_column_walk_the_sort_index_when_many_match(
    rest: Rest, seeded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With at least SCAN_BUDGET matches (5 here), a range on another column than the
    sort's first is filtered along the sort's index (on SQLite) instead of read through
    its own index and sorted: the same pages, totals and skipped totals."""
    monkeypatch.setattr(listing, "SCAN_BUDGET", 5)
    plain: list[int] = []
    original = listing._Compiler.plain

    def counted(self: Any, col: Any) -> Any:
        out = original(self, col)
        if out is not col:
            plain.append(1)
        return out

    monkeypatch.setattr(listing._Compiler, "plain", counted)
    cases = [
        ("duration > 1 && finished_at != ''", "-created"),
        ("duration > 1 && finished_at != ''", "-finished_at"),
        (f"finished_at > '{MID}'", "status,-created"),
        (f"updated < '{MID}' && status != 'failed'", "qpu_name"),
        ("duration >= 0", "-updated"),
        ("duration > 99999", "-created"),
    ]
    for filter_text, sort in cases:
        expected = _reference(seeded, filter_text, sort)
        for page in (1, 3):
            body = _page(rest, rest.admin, filter_text, sort, page, 11)
            assert [r["id"] for r in body["items"]] == expected[(page - 1) * 11 : page * 11], (
                filter_text,
                sort,
                page,
            )
            assert body["totalItems"] == len(expected)
        params = {"filter": filter_text, "sort": sort, "perPage": "11", "skipTotal": "1"}
        skipped = rest.http.get(JOBS, params=params, headers=rest.admin).json()
        assert [r["id"] for r in skipped["items"]] == expected[:11]
        assert skipped["totalItems"] == -1
    if rest.server.settings.effective_database_url.startswith("sqlite"):
        assert plain
