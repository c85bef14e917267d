"""``/api/jobs``: submit, list, inspect and cancel the caller's jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from qpi.gateway import errors, records
from qpi.gateway.context import CtxDep
from qpi.gateway.listing import parse_sort, sort_pattern
from qpi.gateway.models import (
    JobBatchCreate,
    JobBatchOut,
    JobCreate,
    JobOut,
    PathId,
    StatusOut,
)
from qpi.gateway.openapi import api
from qpi.gateway.paging import array_encoder, json_array, read_pages
from qpi.gateway.pushdown import sort_messages
from qpi.v1 import job_pb2, job_service_pb2

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

JOB_FIELDS = frozenset(
    {"id", "user_id", "qpu_target", "status", "finished_at", "duration", "created", "updated"}
)
JOB_SORT = sort_pattern(JOB_FIELDS)
_NOT_CANCELLABLE = "Job not found, maybe it was already completed or cancelled?"


def payload_message(body: JobCreate) -> job_pb2.JobPayload:
    """Convert the REST submit body into a :class:`job_pb2.JobPayload`."""
    circuits = [
        job_pb2.Circuit(
            qasm=c.circuit,
            parameter_values=[job_pb2.ParameterSet(values=v) for v in c.parameter_values or []],
            shots=c.shots or 0,
        )
        for c in body.circuits
    ]
    # acq_rotation/acq_threshold are optional fields: only set ones reach the driver.
    return job_pb2.JobPayload(
        circuits=circuits,
        shots=body.shots,
        meas_level=body.meas_level,
        meas_return=(
            job_pb2.MEAS_RETURN_AVG if body.meas_return == "avg" else job_pb2.MEAS_RETURN_SINGLE
        ),
        acq_rotation=body.acq_rotation,
        acq_threshold=body.acq_threshold,
    )


@router.post(
    "", status_code=201, responses=api(403, 404, 413, 429), response_model_exclude_unset=True
)
async def submit_job(body: JobCreate, ctx: CtxDep) -> JobOut:
    """Submit a job; without ``qpu_target`` the server routes it to a suitable online QPU."""
    resp: job_service_pb2.CreateJobResponse = await ctx.call(
        ctx.stubs.jobs.CreateJob,
        job_service_pb2.CreateJobRequest(payload=payload_message(body), qpu=body.qpu_target),
    )
    return JobOut.model_validate(records.job_object(resp.job))


@router.post(
    "/batch",
    status_code=201,
    responses=api(403, 404, 413, 429),
    response_model_exclude_unset=True,
)
async def submit_jobs(body: JobBatchCreate, ctx: CtxDep) -> JobBatchOut:
    """Submit up to 1,000 jobs at once, all or nothing: if any job is refused, none is
    submitted and the error names the job (``requests[i]...``). Each job's
    ``request_id`` makes a retried batch return the jobs it created the first time."""
    request = job_service_pb2.BatchCreateJobsRequest(
        requests=[
            job_service_pb2.CreateJobRequest(
                payload=payload_message(job), qpu=job.qpu_target, request_id=job.request_id
            )
            for job in body.jobs
        ]
    )
    resp: job_service_pb2.BatchCreateJobsResponse = await ctx.call(
        ctx.stubs.jobs.BatchCreateJobs, request
    )
    return JobBatchOut(jobs=[JobOut.model_validate(records.job_object(j)) for j in resp.jobs])


_ENCODE_JOBS = array_encoder(JobOut, records.job_object)


@router.get("", responses=api(), response_model=list[JobOut], response_model_exclude_unset=True)
async def list_jobs(
    ctx: CtxDep,
    sort: Annotated[str, Query(max_length=512, pattern=JOB_SORT)] = "-created",
    skip: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=0, le=2**31 - 1, description="0 means all.")] = 0,
) -> Response:
    """The caller's jobs as a bare array (``sort``, ``skip``, ``limit``; limit 0 = all).

    The server sorts and pages in SQL; the array is streamed a server page at a time.
    """
    request = job_service_pb2.ListJobsRequest(sort=sort_messages(parse_sort(sort, JOB_FIELDS)))
    pages = read_pages(ctx, ctx.stubs.jobs.ListJobs, request, "jobs", skip, limit)
    return await json_array(pages, _ENCODE_JOBS)


@router.get("/{job_id}", responses=api(404), response_model_exclude_unset=True)
async def get_job(job_id: PathId, ctx: CtxDep) -> JobOut:
    """One of the caller's jobs, with its real results once finished."""
    resp: job_service_pb2.GetJobResponse = await ctx.call(
        ctx.stubs.jobs.GetJob, job_service_pb2.GetJobRequest(id=job_id)
    )
    return JobOut.model_validate(records.job_object(resp.job))


@router.post("/{job_id}/cancel", responses=api(404), response_model_exclude_unset=True)
async def cancel_job(job_id: PathId, ctx: CtxDep) -> StatusOut:
    """Cancel a pending or running job (a running job is also stopped on its driver)."""
    try:
        await ctx.call(ctx.stubs.jobs.CancelJob, job_service_pb2.CancelJobRequest(id=job_id))
    except errors.ApiError as exc:
        if exc.status == 404 or exc.reason == "JOB_ALREADY_TERMINAL":
            raise errors.ApiError(404, _NOT_CANCELLABLE, reason=exc.reason) from exc
        raise
    return StatusOut(status="cancelled")
