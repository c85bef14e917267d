"""``quantum_jobs`` collection (JobService): reading, balance-checked creation, cancel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from qpi.gateway import errors, filters, records
from qpi.gateway.collections.base import Collection
from qpi.gateway.context import Ctx
from qpi.gateway.handlers import validation_data
from qpi.gateway.listing import MAX_PER_PAGE, SortKey, page_of
from qpi.gateway.models import JobCreate
from qpi.gateway.pushdown import filter_message, sort_messages
from qpi.gateway.routes.jobs import payload_message
from qpi.v1 import job_service_pb2


class JobsCollection(Collection):
    """Jobs: own jobs for users, all for administrators; state changes only by cancel."""

    fields = frozenset(
        {
            "id",
            "user_id",
            "qpu_target",
            "qpu_name",
            "status",
            "finished_at",
            "duration",
            "created",
            "updated",
        }
    )
    relations = {"user_id": "users", "qpu_target": "qpus"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """One page, filtered, sorted and counted by the server in SQL (ListJobs)."""
        page, per_page = max(page, 1), min(max(per_page, 1), MAX_PER_PAGE)
        request = job_service_pb2.ListJobsRequest(
            # Administrators see every job, users their own: the server decides from the
            # caller's credentials (no GetCurrentUser round trip first).
            all_visible=True,
            skip=(page - 1) * per_page,
            page_size=per_page,
            sort=sort_messages(keys),
            skip_total=not count_total,
        )
        if query is not None:
            request.filter.CopyFrom(filter_message(query))
        resp = await ctx.call(ctx.stubs.jobs.ListJobs, request)
        items = [records.job_record(j) for j in resp.jobs]
        return page_of(items, int(resp.total_size), page, per_page, capped=resp.total_size_capped)

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One job."""
        resp = await ctx.call(ctx.stubs.jobs.GetJob, job_service_pb2.GetJobRequest(id=record_id))
        return records.job_record(resp.job)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Submit through JobService (balance checked; ``status``/``user_id`` are ignored)."""
        raw = body.get("payload", body)
        if not isinstance(raw, Mapping):
            raise errors.ApiError(
                400,
                "Failed to create record.",
                {"payload": errors.field_error("validation_invalid_value", "Must be an object.")},
            )
        try:
            payload = JobCreate.model_validate(dict(raw))
        except ValidationError as exc:
            data, _ = validation_data([{**e, "loc": ("payload", *e["loc"])} for e in exc.errors()])
            raise errors.ApiError(400, "Failed to create record.", data) from exc
        target = body.get("qpu_target") or payload.qpu_target
        if not isinstance(target, str):
            raise errors.ApiError(
                400,
                "Failed to create record.",
                {"qpu_target": errors.field_error("validation_invalid_value", "Must be an id.")},
            )
        resp = await ctx.call(
            ctx.stubs.jobs.CreateJob,
            job_service_pb2.CreateJobRequest(payload=payload_message(payload), qpu=target),
        )
        return records.job_record(resp.job)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Administrators may set ``status`` to ``cancelled``; nothing else changes a job."""
        if not await ctx.is_admin():
            raise errors.ApiError(403, "Only administrators can update jobs.")
        changes = {k: v for k, v in body.items() if k not in ("id", "collectionName")}
        if changes != {"status": "cancelled"}:
            raise errors.ApiError(400, "Job state changes only through cancel.")
        resp = await ctx.call(
            ctx.stubs.jobs.CancelJob, job_service_pb2.CancelJobRequest(id=record_id)
        )
        return records.job_record(resp.job)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Jobs are kept for accounting; administrators cancel instead."""
        if not await ctx.is_admin():
            raise errors.ApiError(403, "Only administrators can delete jobs.")
        raise errors.ApiError(400, "Jobs cannot be deleted; cancel them instead.")
