"""Time-slot bookings, QPU-time requests and notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from qpi.sdk._base import ClientBase, field_mask, to_timestamp
from qpi.sdk.models import Notification, TimeRequest, TimeSlot
from qpi.v1 import (
    booking_pb2,
    booking_service_pb2,
    notification_pb2,
    notification_service_pb2,
)

When = dt.datetime | str
"""An aware datetime, a naive one (taken as UTC), or ISO-8601 text."""


class BookingsMixin(ClientBase):
    """Methods of :class:`qpi.sdk.QPIClient` about bookings, time requests, notifications."""

    def list_time_slots(self, *, qpu_id: str = "", user_id: str = "") -> list[TimeSlot]:
        """Returns bookings ordered by start time, optionally filtered."""
        request = booking_service_pb2.ListTimeSlotsRequest(qpu_id=qpu_id, user_id=user_id)
        return list(
            self._paginate(
                self._bookings.ListTimeSlots, request, "time_slots", TimeSlot._from_proto
            )
        )

    def create_time_slot(
        self, start: When, end: When, qpu: str | None = None, *, user_id: str | None = None
    ) -> TimeSlot:
        """Books ``[start, end)`` on one QPU (id) or, when ``qpu`` is None, on every QPU.

        Raises:
            FailedPreconditionError: The slot overlaps another booking.
            InvalidArgumentError: The range is empty or starts in the past.

        Example:
            >>> start = datetime.now(UTC) + timedelta(hours=1)
            >>> client.create_time_slot(start, start + timedelta(minutes=30), qpu=qpu.id)
        """
        slot = booking_pb2.TimeSlot(qpu_id=qpu or "", user_id=user_id or "")
        slot.start_time.CopyFrom(to_timestamp(start))
        slot.end_time.CopyFrom(to_timestamp(end))
        request = booking_service_pb2.CreateTimeSlotRequest(time_slot=slot)
        response = self._unary(self._bookings.CreateTimeSlot, request)
        return TimeSlot._from_proto(response.time_slot)

    def update_time_slot(
        self,
        slot_id: str,
        start: When | None = None,
        end: When | None = None,
        *,
        qpu: str | None = None,
    ) -> TimeSlot:
        """Moves a booking; only the given fields change."""
        slot = booking_pb2.TimeSlot(id=slot_id)
        paths: list[str] = []
        if start is not None:
            slot.start_time.CopyFrom(to_timestamp(start))
            paths.append("start_time")
        if end is not None:
            slot.end_time.CopyFrom(to_timestamp(end))
            paths.append("end_time")
        if qpu is not None:
            slot.qpu_id = qpu
            paths.append("qpu_id")
        request = booking_service_pb2.UpdateTimeSlotRequest(
            time_slot=slot, update_mask=field_mask(*paths)
        )
        response = self._unary(self._bookings.UpdateTimeSlot, request)
        return TimeSlot._from_proto(response.time_slot)

    def delete_time_slot(self, slot_id: str) -> None:
        """Cancels a booking."""
        request = booking_service_pb2.DeleteTimeSlotRequest(id=slot_id)
        self._unary(self._bookings.DeleteTimeSlot, request)

    def list_time_requests(self, *, state: str | None = None) -> list[TimeRequest]:
        """Returns time requests (own, or all for administrators), newest first."""
        request = booking_service_pb2.ListTimeRequestsRequest()
        if state:
            request.state = booking_pb2.TimeRequest.State.Value(f"STATE_{state.upper()}")
        return list(
            self._paginate(
                self._bookings.ListTimeRequests,
                request,
                "time_requests",
                TimeRequest._from_proto,
            )
        )

    def create_time_request(
        self, seconds: float, requested_reason: str | None = None
    ) -> TimeRequest:
        """Asks administrators for more QPU seconds; the request starts ``pending``."""
        request = booking_service_pb2.CreateTimeRequestRequest(
            seconds=seconds, requested_reason=requested_reason or ""
        )
        response = self._unary(self._bookings.CreateTimeRequest, request)
        return TimeRequest._from_proto(response.time_request)

    def delete_time_request(self, request_id: str) -> None:
        """Withdraws an own pending request."""
        request = booking_service_pb2.DeleteTimeRequestRequest(id=request_id)
        self._unary(self._bookings.DeleteTimeRequest, request)

    def approve_time_request(self, request_id: str) -> TimeRequest:
        """Approves a pending request and credits its seconds (administrators)."""
        request = booking_service_pb2.ApproveTimeRequestRequest(id=request_id)
        response = self._unary(self._bookings.ApproveTimeRequest, request)
        return TimeRequest._from_proto(response.time_request)

    def reject_time_request(self, request_id: str, rejection_reason: str = "") -> TimeRequest:
        """Rejects a pending request (administrators)."""
        request = booking_service_pb2.RejectTimeRequestRequest(
            id=request_id, rejection_reason=rejection_reason
        )
        response = self._unary(self._bookings.RejectTimeRequest, request)
        return TimeRequest._from_proto(response.time_request)

    def update_time_request(
        self, request_id: str, status: str, rejection_reason: str | None = None
    ) -> TimeRequest:
        """Parity helper: ``status`` ``"approved"`` approves, ``"rejected"`` rejects.

        Raises:
            ValueError: Any other ``status``.
        """
        if status == "approved":
            return self.approve_time_request(request_id)
        if status == "rejected":
            return self.reject_time_request(request_id, rejection_reason or "")
        raise ValueError(f"status must be 'approved' or 'rejected', not {status!r}")

    def list_notifications(
        self, *, include_dismissed: bool = False, all: bool = False
    ) -> list[Notification]:
        """Returns the notifications visible to the caller (``all``: administrators)."""
        request = notification_service_pb2.ListNotificationsRequest(
            include_dismissed=include_dismissed, all=all
        )
        return list(
            self._paginate(
                self._notifications.ListNotifications,
                request,
                "notifications",
                Notification._from_proto,
            )
        )

    def dismiss_notification(self, notification_id: str) -> None:
        """Hides a notification for the caller only (idempotent)."""
        request = notification_service_pb2.DismissNotificationRequest(id=notification_id)
        self._unary(self._notifications.DismissNotification, request)

    def create_notification(
        self,
        title: str,
        description: str = "",
        *,
        target_user_ids: Iterable[str] = (),
        start: When | None = None,
        end: When | None = None,
    ) -> Notification:
        """Publishes a notification (administrators); no targets means everyone."""
        item = notification_pb2.Notification(
            title=title, description=description, target_user_ids=list(target_user_ids)
        )
        if start is not None:
            item.start_time.CopyFrom(to_timestamp(start))
        if end is not None:
            item.end_time.CopyFrom(to_timestamp(end))
        request = notification_service_pb2.CreateNotificationRequest(notification=item)
        response = self._unary(self._notifications.CreateNotification, request)
        return Notification._from_proto(response.notification)

    def update_notification(
        self,
        notification_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        target_user_ids: Iterable[str] | None = None,
        start: When | None = None,
        end: When | None = None,
    ) -> Notification:
        """Changes the given fields of a notification (administrators)."""
        item = notification_pb2.Notification(id=notification_id)
        paths: list[str] = []
        if title is not None:
            item.title = title
            paths.append("title")
        if description is not None:
            item.description = description
            paths.append("description")
        if target_user_ids is not None:
            item.target_user_ids.extend(target_user_ids)
            paths.append("target_user_ids")
        if start is not None:
            item.start_time.CopyFrom(to_timestamp(start))
            paths.append("start_time")
        if end is not None:
            item.end_time.CopyFrom(to_timestamp(end))
            paths.append("end_time")
        request = notification_service_pb2.UpdateNotificationRequest(
            notification=item, update_mask=field_mask(*paths)
        )
        response = self._unary(self._notifications.UpdateNotification, request)
        return Notification._from_proto(response.notification)

    def delete_notification(self, notification_id: str) -> None:
        """Deletes a notification (administrators)."""
        request = notification_service_pb2.DeleteNotificationRequest(id=notification_id)
        self._unary(self._notifications.DeleteNotification, request)
