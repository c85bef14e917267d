"""BookingService: time slots and QPU-time requests."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.listing import Condition, FieldRef, Filter, Junction, SortKey, Value
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import unary
from qpi.server.rpc.list_query import page_of, request_query
from qpi.server.rpc.pages import messages
from qpi.server.services.account_service import AccountService
from qpi.server.services.booking_service import BookingService
from qpi.server.services.database import Database
from qpi.server.services.principal import Principal
from qpi.v1 import booking_service_pb2 as pb
from qpi.v1 import booking_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class BookingServicer(booking_service_pb2_grpc.BookingServiceServicer):
    """Thin adapter over BookingService."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        bookings: BookingService,
        accounts: AccountService,
    ) -> None:
        self._db = db
        self._auth = auth
        self._bookings = bookings
        self._accounts = accounts

    async def _emails(self, who: Principal, user_ids: set[str]) -> dict[str, str]:
        # The users collection's rule: an e-mail is shown to its owner and administrators
        # only, never to other users reading the shared booking calendar.
        visible = {user_id for user_id in user_ids if who.can_see(user_id)}
        return await self._db.run(self._accounts.emails, visible) if visible else {}

    @unary
    async def ListTimeSlots(
        self, request: pb.ListTimeSlotsRequest, context: Ctx
    ) -> pb.ListTimeSlotsResponse:
        who = await self._auth.principal(context)
        newest = request.order_by.strip().lower() == "start_time desc"
        terms: list[Filter] = []
        if request.qpu_id:
            # Slots on this QPU, and slots booking every QPU.
            on = (Value(request.qpu_id), Value(""))
            terms.append(Junction("or", tuple(Condition(FieldRef("qpu"), "=", v) for v in on)))
        if request.user_id:
            terms.append(Condition(FieldRef("booked_by"), "=", Value(request.user_id)))
        query, key = request_query(request, terms)
        query, finish = page_of(request, query, f"slots|{newest}|{key}")
        default = (SortKey("start_time", descending=newest),)
        rows, total = await self._db.run(self._bookings.query_slots, who, query, default)
        mails = await self._emails(who, {r.user_id for r in rows})
        total_size, capped, token = finish(len(rows), total)
        return pb.ListTimeSlotsResponse(
            time_slots=await messages(
                rows, lambda r: convert.time_slot(r, mails.get(r.user_id, ""))
            ),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetTimeSlot(
        self, request: pb.GetTimeSlotRequest, context: Ctx
    ) -> pb.GetTimeSlotResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._bookings.get_slot, who, request.id)
        mails = await self._emails(who, {row.user_id})
        return pb.GetTimeSlotResponse(time_slot=convert.time_slot(row, mails.get(row.user_id, "")))

    @unary
    async def CreateTimeSlot(
        self, request: pb.CreateTimeSlotRequest, context: Ctx
    ) -> pb.CreateTimeSlotResponse:
        who = await self._auth.principal(context)
        slot = request.time_slot
        if not slot.HasField("start_time") or not slot.HasField("end_time"):
            raise InvalidArgumentError(
                "INVALID_FIELD", "start_time and end_time are required.", field="start_time"
            )
        row = await self._db.run(
            self._bookings.create_slot,
            who,
            convert.from_ts(slot.start_time, "start_time"),
            convert.from_ts(slot.end_time, "end_time"),
            slot.qpu_id or None,
            slot.user_id,
        )
        mails = await self._emails(who, {row.user_id})
        return pb.CreateTimeSlotResponse(
            time_slot=convert.time_slot(row, mails.get(row.user_id, ""))
        )

    @unary
    async def UpdateTimeSlot(
        self, request: pb.UpdateTimeSlotRequest, context: Ctx
    ) -> pb.UpdateTimeSlotResponse:
        who = await self._auth.principal(context)
        slot = request.time_slot
        fields: dict[str, object] = {}
        for path in request.update_mask.paths:
            if path in ("start_time", "end_time"):
                value = slot.start_time if path == "start_time" else slot.end_time
                if not value.seconds and not value.nanos:
                    raise InvalidArgumentError("INVALID_FIELD", f"{path} must be set.", field=path)
                fields[path] = convert.from_ts(value, path)
            elif path == "qpu_id":
                fields["qpu_id"] = slot.qpu_id
            else:
                raise InvalidArgumentError(
                    "INVALID_FIELD", f"Cannot update field {path}.", field=path
                )
        row = await self._db.run(self._bookings.update_slot, who, slot.id, fields)
        mails = await self._emails(who, {row.user_id})
        return pb.UpdateTimeSlotResponse(
            time_slot=convert.time_slot(row, mails.get(row.user_id, ""))
        )

    @unary
    async def DeleteTimeSlot(
        self, request: pb.DeleteTimeSlotRequest, context: Ctx
    ) -> pb.DeleteTimeSlotResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._bookings.delete_slot, who, request.id)
        return pb.DeleteTimeSlotResponse()

    @unary
    async def ListTimeRequests(
        self, request: pb.ListTimeRequestsRequest, context: Ctx
    ) -> pb.ListTimeRequestsResponse:
        who = await self._auth.principal(context)
        state = convert.REQUEST_STATE_NAMES.get(request.state, "")
        terms: list[Filter] = [Condition(FieldRef("status"), "=", Value(state))] if state else []
        query, key = request_query(request, terms)
        query, finish = page_of(request, query, f"requests|{who.user_id}|{key}")
        rows, total = await self._db.run(self._bookings.query_requests, who, query)
        mails = await self._emails(who, {r.user_id for r in rows})
        total_size, capped, token = finish(len(rows), total)
        return pb.ListTimeRequestsResponse(
            time_requests=await messages(
                rows, lambda r: convert.time_request(r, mails.get(r.user_id, ""))
            ),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetTimeRequest(
        self, request: pb.GetTimeRequestRequest, context: Ctx
    ) -> pb.GetTimeRequestResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._bookings.get_request, who, request.id)
        return pb.GetTimeRequestResponse(time_request=convert.time_request(row))

    @unary
    async def CreateTimeRequest(
        self, request: pb.CreateTimeRequestRequest, context: Ctx
    ) -> pb.CreateTimeRequestResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(
            self._bookings.create_request, who, request.seconds, request.requested_reason
        )
        return pb.CreateTimeRequestResponse(time_request=convert.time_request(row, who.email))

    @unary
    async def DeleteTimeRequest(
        self, request: pb.DeleteTimeRequestRequest, context: Ctx
    ) -> pb.DeleteTimeRequestResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._bookings.delete_request, who, request.id)
        return pb.DeleteTimeRequestResponse()

    @unary
    async def ApproveTimeRequest(
        self, request: pb.ApproveTimeRequestRequest, context: Ctx
    ) -> pb.ApproveTimeRequestResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._bookings.decide_request, who, request.id, True)
        return pb.ApproveTimeRequestResponse(time_request=convert.time_request(row))

    @unary
    async def RejectTimeRequest(
        self, request: pb.RejectTimeRequestRequest, context: Ctx
    ) -> pb.RejectTimeRequestResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(
            self._bookings.decide_request, who, request.id, False, request.rejection_reason
        )
        return pb.RejectTimeRequestResponse(time_request=convert.time_request(row))
