"""JobService: submit, get, list, cancel, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from qpi.server.domain.models import Job
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator, StreamCaller
from qpi.server.rpc.errors import streaming, unary
from qpi.server.services.database import Database
from qpi.server.services.events import CLIENT_STREAM_BACKLOG, EventBus
from qpi.server.services.job_service import JobService
from qpi.server.services.paging import next_token, page_window
from qpi.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
_TERMINAL = {"completed", "failed", "cancelled"}


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    """Thin adapter over JobService."""

    def __init__(
        self, db: Database, auth: Authenticator, jobs: JobService, events: EventBus
    ) -> None:
        self._db = db
        self._auth = auth
        self._jobs = jobs
        self._events = events

    async def _to_proto(self, rows: list[Job]) -> list[job_pb2.Job]:
        qpus, users = await self._db.run(self._jobs.display_names, rows)
        return [convert.job(r, qpus.get(r.qpu_id, ""), users.get(r.user_id, "")) for r in rows]

    def _named(self, job: Job) -> tuple[Job, tuple[dict[str, str], dict[str, str]]]:
        """A job with its display names, read in the same database hop as the job."""
        return job, self._jobs.display_names([job])

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
        # Validation and parsing (in the QASM worker process) happen before the database
        # hop: the single database thread must not wait on a parse.
        prepared = await asyncio.to_thread(self._jobs.prepare, req)
        named = await self._db.run(lambda: self._named(self._jobs.submit(who, req, prepared)))
        return job_service_pb2.CreateJobResponse(job=self._one(named))

    @unary
    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: Ctx
    ) -> job_service_pb2.GetJobResponse:
        who = await self._auth.principal(context)
        named = await self._db.run(lambda: self._named(self._jobs.get(who, request.id)))
        return job_service_pb2.GetJobResponse(job=self._one(named))

    @unary
    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: Ctx
    ) -> job_service_pb2.ListJobsResponse:
        who = await self._auth.principal(context)
        states = [
            convert.JOB_STATE_NAMES[s] for s in request.states if s in convert.JOB_STATE_NAMES
        ]
        newest_first = request.order_by.strip().lower() != "create_time asc"
        key = f"jobs|{who.user_id}|{sorted(states)}|{request.qpu_id}|{request.all_users}"
        key += f"|{newest_first}"
        offset, limit = page_window(request.page_size, request.page_token, request.skip, key)
        rows, total = await self._db.run(
            self._jobs.list_jobs,
            who,
            states=states,
            qpu_id=request.qpu_id,
            all_users=request.all_users,
            newest_first=newest_first,
            offset=offset,
            limit=limit,
        )
        return job_service_pb2.ListJobsResponse(
            jobs=await self._to_proto(rows),
            total_size=total,
            next_page_token=next_token(offset, limit, len(rows), total, key),
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
            named = await self._db.run(lambda: self._named(self._jobs.get(who, request.id)))
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
