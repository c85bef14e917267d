"""``time_slots`` and ``qpu_time_requests`` collections (BookingService)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from qpi.gateway import errors, filters, records
from qpi.gateway.collections.base import BodyReader, Collection, server_page
from qpi.gateway.context import Ctx
from qpi.gateway.listing import SortKey
from qpi.v1 import booking_pb2, booking_service_pb2

_ALREADY_PROCESSED = "Cannot update a request that has already been processed."


class TimeSlotsCollection(Collection):
    """Bookings; ``qpu`` empty books every QPU. The server enforces every booking rule."""

    fields = frozenset({"id", "start_time", "end_time", "booked_by", "qpu", "created"})
    relations = {"booked_by": "users", "qpu": "qpus"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """All bookings, a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.bookings.ListTimeSlots,
            booking_service_pb2.ListTimeSlotsRequest(),
            "time_slots",
            records.time_slot_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One booking."""
        resp = await ctx.call(
            ctx.stubs.bookings.GetTimeSlot, booking_service_pb2.GetTimeSlotRequest(id=record_id)
        )
        return records.time_slot_record(resp.time_slot)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Book a slot (``booked_by`` defaults to the caller)."""
        reader = BodyReader(body, "create")
        start = reader.date("start_time", required=True)
        end = reader.date("end_time", required=True)
        booked_by = reader.text("booked_by", max_len=64) or ""
        qpu = reader.text("qpu", max_len=255) or ""
        reader.check()
        slot = booking_pb2.TimeSlot(user_id=booked_by, qpu_id=qpu, start_time=start, end_time=end)
        resp = await ctx.call(
            ctx.stubs.bookings.CreateTimeSlot,
            booking_service_pb2.CreateTimeSlotRequest(time_slot=slot),
        )
        return records.time_slot_record(resp.time_slot)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Move a booking (start, end, QPU); the booker cannot be changed."""
        reader = BodyReader(body, "update")
        slot = booking_pb2.TimeSlot(id=record_id)
        paths: list[str] = []
        if reader.has("start_time") and (start := reader.date("start_time", True)) is not None:
            slot.start_time.CopyFrom(start)
            paths.append("start_time")
        if reader.has("end_time") and (end := reader.date("end_time", True)) is not None:
            slot.end_time.CopyFrom(end)
            paths.append("end_time")
        if (qpu := reader.text("qpu", max_len=255)) is not None:
            slot.qpu_id = qpu
            paths.append("qpu_id")
        booked_by = reader.text("booked_by", max_len=64)
        reader.check()
        if booked_by:
            current = await self.view(ctx, record_id)
            if booked_by != current["booked_by"]:
                raise errors.ApiError(400, "Cannot change who booked a slot.")
        if not paths:
            return await self.view(ctx, record_id)
        resp = await ctx.call(
            ctx.stubs.bookings.UpdateTimeSlot,
            booking_service_pb2.UpdateTimeSlotRequest(
                time_slot=slot, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )
        return records.time_slot_record(resp.time_slot)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Cancel a booking."""
        await ctx.call(
            ctx.stubs.bookings.DeleteTimeSlot,
            booking_service_pb2.DeleteTimeSlotRequest(id=record_id),
        )


class TimeRequestsCollection(Collection):
    """QPU-time requests: users create and withdraw; administrators approve or reject."""

    fields = frozenset(
        {
            "id",
            "user",
            "seconds",
            "status",
            "requested_reason",
            "rejection_reason",
            "handled_by",
            "created",
        }
    )
    relations = {"user": "users"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """Own requests (administrators: all), a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.bookings.ListTimeRequests,
            booking_service_pb2.ListTimeRequestsRequest(),
            "time_requests",
            records.time_request_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One request."""
        resp = await ctx.call(
            ctx.stubs.bookings.GetTimeRequest,
            booking_service_pb2.GetTimeRequestRequest(id=record_id),
        )
        return records.time_request_record(resp.time_request)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Request seconds; the request always starts ``pending`` whatever the body says."""
        reader = BodyReader(body, "create")
        seconds = reader.number("seconds", required=True)
        reason = reader.text("requested_reason") or ""
        reader.check()
        resp = await ctx.call(
            ctx.stubs.bookings.CreateTimeRequest,
            booking_service_pb2.CreateTimeRequestRequest(
                seconds=seconds or 0.0, requested_reason=reason
            ),
        )
        return records.time_request_record(resp.time_request)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Approve or reject (``status``), the only change a request accepts."""
        reader = BodyReader(body, "update")
        status = reader.text("status", max_len=32)
        rejection = reader.text("rejection_reason") or ""
        user = reader.text("user", max_len=64)
        seconds = reader.number("seconds")
        reader.check()
        current = await self.view(ctx, record_id)
        if user is not None and user != current["user"]:
            raise errors.ApiError(400, "Cannot modify the user of a time request.")
        if seconds is not None and seconds != current["seconds"]:
            raise errors.ApiError(400, "Cannot modify the requested seconds.")
        if status == "approved":
            resp = await ctx.call(
                ctx.stubs.bookings.ApproveTimeRequest,
                booking_service_pb2.ApproveTimeRequestRequest(id=record_id),
            )
            return records.time_request_record(resp.time_request)
        if status == "rejected":
            resp = await ctx.call(
                ctx.stubs.bookings.RejectTimeRequest,
                booking_service_pb2.RejectTimeRequestRequest(
                    id=record_id, rejection_reason=rejection
                ),
            )
            return records.time_request_record(resp.time_request)
        if not await ctx.is_admin():
            raise errors.ApiError(403, "Only administrators can update time requests.")
        if status not in (None, current["status"]):
            if current["status"] != "pending":
                raise errors.ApiError(
                    400, "Cannot update a request that has already been processed."
                )
            raise errors.ApiError(400, f"Unknown status {status!r}.")
        return current

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Withdraw an own pending request."""
        await ctx.call(
            ctx.stubs.bookings.DeleteTimeRequest,
            booking_service_pb2.DeleteTimeRequestRequest(id=record_id),
        )
