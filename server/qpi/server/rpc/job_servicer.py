"""JobService: submit, get, list, cancel, watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc

from qpi.server.domain.listing import Condition, FieldRef, Filter, Junction, ListQuery, Value
from qpi.server.domain.listing import SortKey as ListSortKey
from qpi.server.domain.models import Job
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator, StreamCaller
from qpi.server.rpc.errors import streaming, unary
from qpi.server.rpc.list_query import filter_from_proto, page_end, sort_from_proto
from qpi.server.rpc.pages import messages
from qpi.server.services.database import Database
from qpi.server.services.events import CLIENT_STREAM_BACKLOG, EventBus
from qpi.server.services.job_service import JobService
from qpi.server.services.paging import page_window
from qpi.server.services.submission import SubmissionService
from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
_TERMINAL = {"completed", "failed", "cancelled"}


def _list_query(request: job_service_pb2.ListJobsRequest) -> tuple[ListQuery, str]:
    """The domain query of a ListJobs request (states and QPU folded into the filter), and
    a key identifying it for page tokens."""
    terms: list[Filter] = []
    names = convert.JOB_STATE_NAMES
    states = sorted({names[s] for s in request.states if s in names})
    if states:
        terms.append(
            Junction("or", tuple(Condition(FieldRef("status"), "=", Value(s)) for s in states))
        )
    if request.qpu_id:
        terms.append(Condition(FieldRef("qpu_target"), "=", Value(request.qpu_id)))
    extra = filter_from_proto(request.filter, request.HasField("filter"))
    if extra is not None:
        terms.append(extra)
    sort = sort_from_proto(request.sort) or (
        ListSortKey("created", descending=request.order_by.strip().lower() != "create_time asc"),
    )
    where = terms[0] if len(terms) == 1 else (Junction("and", tuple(terms)) if terms else None)
    query = ListQuery(filter=where, sort=sort, count_total=not request.skip_total)
    key = f"{where!r}|{sort!r}|{request.skip_total}"
    return query, key


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    """Thin adapter over JobService."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        jobs: JobService,
        submissions: SubmissionService,
        events: EventBus,
    ) -> None:
        self._db = db
        self._auth = auth
        self._jobs = jobs
        self._submissions = submissions
        self._events = events

    async def _to_proto(self, rows: list[Job]) -> list[job_pb2.Job]:
        qpus, users = await self._db.run(self._jobs.display_names, rows)
        return [convert.job(r, qpus.get(r.qpu_id, ""), users.get(r.user_id, "")) for r in rows]

    @staticmethod
    def _one(named: tuple[Job, tuple[dict[str, str], dict[str, str]]]) -> job_pb2.Job:
        job, (qpus, users) = named
        return convert.job(job, qpus.get(job.qpu_id, ""), users.get(job.user_id, ""))

    @unary
    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: Ctx
    ) -> job_service_pb2.CreateJobResponse:
        who = await self._auth.principal(context)
        req = convert.submit_request(
            request.payload, request.qpu.strip(), request.request_id.strip()
        )
        # Circuits are parsed in the parser pool (the single database thread never waits
        # on a parse); then one database trip stores the job, with concurrent submits.
        prepared = await self._submissions.validate(req)
        job, new = await self._submissions.store(who, prepared)
        if new:  # the caller's, on the QPU it was just routed to: both names are known
            names = ({job.qpu_id: job.qpu_name}, {job.user_id: who.email})
        else:  # an earlier job of the same request id: its current names
            names = await self._db.run(self._jobs.display_names, [job])
        return job_service_pb2.CreateJobResponse(job=self._one((job, names)))

    @unary
    async def BatchCreateJobs(
        self, request: job_service_pb2.BatchCreateJobsRequest, context: Ctx
    ) -> job_service_pb2.BatchCreateJobsResponse:
        who = await self._auth.principal(context)
        reqs = [
            convert.submit_request(r.payload, r.qpu.strip(), r.request_id.strip())
            for r in request.requests
        ]
        # Like CreateJob: circuits are parsed in the parser pool, then one insert transaction.
        rows = await self._submissions.submit_batch(who, reqs)
        return job_service_pb2.BatchCreateJobsResponse(jobs=await self._to_proto(rows))

    @unary
    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: Ctx
    ) -> job_service_pb2.GetJobResponse:
        who = await self._auth.principal(context)
        named = await self._db.run(self._jobs.get_named, who, request.id)
        return job_service_pb2.GetJobResponse(job=self._one(named))

    @unary
    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: Ctx
    ) -> job_service_pb2.ListJobsResponse:
        who = await self._auth.principal(context)
        all_users = request.all_users or (request.all_visible and who.is_superuser)
        query, key = _list_query(request)
        key = f"jobs|{who.user_id}|{all_users}|{key}"
        offset, limit = page_window(request.page_size, request.page_token, request.skip, key)
        query = replace(query, offset=offset, limit=limit)
        # One database hop for the page, its count and its display names.
        rows, total, (qpus, users) = await self._db.run(
            lambda: self._jobs.query_jobs_named(who, query, all_users=all_users)
        )
        total_size, capped, token = page_end(offset, limit, len(rows), total, key)

        jobs = await messages(
            rows, lambda r: convert.job(r, qpus.get(r.qpu_id, ""), users.get(r.user_id, ""))
        )
        return job_service_pb2.ListJobsResponse(
            jobs=jobs,
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: Ctx
    ) -> job_service_pb2.CancelJobResponse:
        who = await self._auth.principal(context)
        row, revocation = await self._db.run(self._jobs.cancel, who, request.id)
        if revocation is not None:
            self._events.publish("cancel", revocation)
        return job_service_pb2.CancelJobResponse(job=(await self._to_proto([row]))[0])

    @streaming
    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: Ctx
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        who = await self._auth.principal(context)
        # Subscribe before reading so no change between the read and the subscription is lost;
        # the subscription carries only this job's events.
        async with self._events.watch_job(request.id, CLIENT_STREAM_BACKLOG) as queue:
            named = await self._db.run(self._jobs.get_named, who, request.id)
            row = named[0]
            last = (row.state, row.attempt)
            yield job_service_pb2.WatchJobResponse(job=self._one(named))
            caller = StreamCaller(self._auth, context, who)
            try:
                while row.state not in _TERMINAL:
                    event = await caller.next_event(queue)
                    if event.topic != "job" or event.payload.id != request.id:
                        continue
                    row = event.payload
                    if (row.state, row.attempt) == last:
                        continue
                    last = (row.state, row.attempt)
                    # A job's QPU and owner never change: reuse the names read with it.
                    yield job_service_pb2.WatchJobResponse(job=self._one((row, named[1])))
            finally:
                caller.close()
