"""Collection list pages say whether ``totalItems`` is exact or the lower bound where the
server's count stopped (``totalItemsCapped``). The caps are lowered to 3 here rather than
seeding 10,000 rows. Runs on SQLite and PostgreSQL (``QPI_TEST_DATABASE=postgres``)."""

from __future__ import annotations

from typing import Any

import pytest

from qpi.server.store import listing
from tests.integration.gateway.conftest import Rest
from tests.support.job_seed import seed_jobs

BASE = "/api/collections"


def _page(rest: Rest, name: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    resp = rest.http.get(f"{BASE}/{name}/records", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _total(page: dict[str, Any]) -> tuple[int, bool, int]:
    return page["totalItems"], page["totalItemsCapped"], page["totalPages"]


def test_list_pages_flag_a_capped_total(rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    monkeypatch.setattr(listing, "READ_COUNT_CAP", 3)
    qpu = rest.server.register_qpu("capped", 2)[0]
    url = rest.server.settings.effective_database_url
    seed_jobs(url, [rest.a_id], [qpu], 5)  # more than the cap
    seed_jobs(url, [rest.b_id], [qpu], 3)  # exactly the cap

    jobs = "quantum_jobs"
    assert _total(_page(rest, jobs, rest.a, perPage="2")) == (3, True, 2)
    # Past the counted pages the server still serves, and the total stays a lower bound.
    last = _page(rest, jobs, rest.a, perPage="2", page="3")
    assert (len(last["items"]), *_total(last)) == (1, 3, True, 2)
    assert _total(_page(rest, jobs, rest.b, perPage="2")) == (3, False, 2)
    assert _total(_page(rest, jobs, rest.a, perPage="2", skipTotal="1")) == (-1, False, -1)

    # The collections the server lists through its generic page (here: users) alike.
    for i in range(2):
        rest.server.create_user(f"more{i}@example.com")
    assert _total(_page(rest, "users", rest.admin, perPage="2")) == (3, True, 2)
    one = _page(rest, "users", rest.admin, filter=f"id = '{rest.a_id}'")
    assert _total(one) == (1, False, 1)
