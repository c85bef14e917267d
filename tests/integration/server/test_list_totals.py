"""List responses say whether ``total_size`` is exact or the lower bound where the count
stopped (``total_size_capped``), and page tokens go on past a capped total. The caps are
lowered to 3 here rather than seeding 10,000 rows."""

from __future__ import annotations

import pytest

from qpi.server.store import listing
from qpi.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    list_query_pb2,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)
from tests.support.harness import ServerHarness
from tests.support.job_seed import seed_jobs


def _name_is(name: str) -> list_query_pb2.FilterExpression:
    return list_query_pb2.FilterExpression(
        condition=list_query_pb2.FilterCondition(
            left=list_query_pb2.FilterOperand(field="name"),
            op=list_query_pb2.FILTER_OPERATOR_EQUAL,
            right=list_query_pb2.FilterOperand(text=name),
        )
    )


def _all_pages(
    stub: job_service_pb2_grpc.JobServiceStub, metadata: list[tuple[str, str]]
) -> list[job_service_pb2.ListJobsResponse]:
    pages = [stub.ListJobs(job_service_pb2.ListJobsRequest(page_size=2), metadata=metadata)]
    while pages[-1].next_page_token:
        request = job_service_pb2.ListJobsRequest(page_size=2, page_token=pages[-1].next_page_token)
        pages.append(stub.ListJobs(request, metadata=metadata))
    return pages


def test_list_responses_flag_a_capped_total(
    qpi_server: ServerHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    monkeypatch.setattr(listing, "READ_COUNT_CAP", 3)
    alice_id, alice = qpi_server.create_user("alice@example.com")
    bob_id, bob = qpi_server.create_user("bob@example.com")
    qpus = [qpi_server.register_qpu(f"q{i}", 2)[0] for i in range(5)]
    url = qpi_server.settings.effective_database_url
    seed_jobs(url, [alice_id], qpus, 5)  # more than the cap
    seed_jobs(url, [bob_id], qpus, 3)  # exactly the cap
    jobs = job_service_pb2_grpc.JobServiceStub(qpi_server.channel())

    capped = _all_pages(jobs, qpi_server.auth(alice))
    assert [(p.total_size, p.total_size_capped) for p in capped] == [(3, True)] * 3
    # The tokens go on past the cap to every job.
    assert len({j.id for p in capped for j in p.jobs}) == 5

    exact = _all_pages(jobs, qpi_server.auth(bob))
    assert [(p.total_size, p.total_size_capped) for p in exact] == [(3, False)] * 2
    assert len({j.id for p in exact for j in p.jobs}) == 3

    uncounted = jobs.ListJobs(
        job_service_pb2.ListJobsRequest(page_size=2, skip_total=True),
        metadata=qpi_server.auth(alice),
    )
    assert (uncounted.total_size, uncounted.total_size_capped) == (-1, False)

    # Every list response carries the flag the same way (here: QPUs, five of them).
    stub = qpu_service_pb2_grpc.QpuServiceStub(qpi_server.channel())
    admin = qpi_server.auth(qpi_server.admin_token)
    listed = stub.ListQpus(qpu_service_pb2.ListQpusRequest(page_size=2), metadata=admin)
    assert (listed.total_size, listed.total_size_capped) == (3, True)
    assert listed.next_page_token
    last = stub.ListQpus(qpu_service_pb2.ListQpusRequest(page_size=2, skip=4), metadata=admin)
    assert (len(last.qpus), last.total_size, last.total_size_capped) == (1, 3, True)
    assert not last.next_page_token
    one = qpu_service_pb2.ListQpusRequest(page_size=2, filter=_name_is("q0"))
    exact = stub.ListQpus(one, metadata=admin)
    assert (exact.total_size, exact.total_size_capped) == (1, False)
