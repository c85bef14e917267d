"""Announcements with per-user targets and dismissals."""

from __future__ import annotations

from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.domain.listing import Condition, FieldRef, ListQuery, Total, Value
from qpi.server.domain.models import NotificationView
from qpi.server.domain.notifications import can_dismiss
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.notification_listing import NotificationListing
from qpi.server.store.notifications import NotificationRepository


def _not_found(notification_id: str) -> NotFoundError:
    return NotFoundError(
        "NOTIFICATION_NOT_FOUND", "Notification not found.", metadata={"id": notification_id}
    )


class NotificationService:
    """Notification use cases."""

    def __init__(
        self,
        notifications: NotificationRepository,
        clock: Clock,
        events: EventBus,
        listing: NotificationListing,
    ) -> None:
        self._notifications = notifications
        self._listing = listing
        self._clock = clock
        self._events = events

    def query(
        self, who: Principal, query: ListQuery, *, all_: bool, include_dismissed: bool
    ) -> tuple[list[NotificationView], Total | None]:
        """One page of the caller's feed (administrators with `all_`: every notification)
        matching an arbitrary filter and order, run in the database."""
        if all_:
            who.require_admin()
        return self._listing.list_notifications_query(
            who.user_id, all_, include_dismissed, who.is_superuser, query, self._clock.now()
        )

    def get(self, who: Principal, notification_id: str) -> NotificationView:
        """One notification visible to the caller (administrators: any), dismissed or not.

        The feed's own query with the id as its filter: one indexed probe, whereas reading
        every notification and testing each (as this once did) cost a request ~260 ms of
        the database thread with 10,000 notifications.
        """
        by_id = Condition(FieldRef("id"), "=", Value(notification_id))
        views, _ = self._listing.list_notifications_query(
            who.user_id,
            who.is_superuser,
            True,
            who.is_superuser,
            ListQuery(filter=by_id, limit=1, count_total=False),
            self._clock.now(),
        )
        if not views:
            raise _not_found(notification_id)
        return views[0]

    def _check_targets(self, targets: list[str]) -> None:
        missing = self._notifications.missing_users(targets)
        if missing:
            raise InvalidArgumentError(
                "INVALID_FIELD",
                f"Unknown target user(s): {', '.join(missing)}.",
                field="target_user_ids",
            )

    def create(
        self,
        who: Principal,
        title: str,
        description: str,
        targets: list[str],
        start: datetime | None,
        end: datetime | None,
    ) -> NotificationView:
        """Administrators: creates a notification."""
        who.require_admin()
        self._validate(title, start, end)
        self._check_targets(targets)
        view = self._notifications.insert(title.strip(), description, start, end, targets)
        self._events.publish("notification", view.notification.id)
        return view

    @staticmethod
    def _validate(title: str, start: datetime | None, end: datetime | None) -> None:
        if not title.strip():
            raise InvalidArgumentError(
                "INVALID_FIELD", "A notification needs a title.", field="title"
            )
        if start and end and end < start:
            raise InvalidArgumentError(
                "INVALID_FIELD", "end_time must not be before start_time.", field="end_time"
            )

    def update(
        self, who: Principal, notification_id: str, fields: dict[str, object]
    ) -> NotificationView:
        """Administrators: updates a notification."""
        who.require_admin()
        current = self._notifications.get(notification_id)
        if current is None:
            raise _not_found(notification_id)
        title = str(fields["title"]).strip() if "title" in fields else current.title
        description = str(fields["description"]) if "description" in fields else current.description
        times: dict[str, datetime | None] = {
            "start_time": current.start_time,
            "end_time": current.end_time,
        }
        for key in times:
            if key in fields:
                value = fields[key]
                times[key] = value if isinstance(value, datetime) else None
        self._validate(title, times["start_time"], times["end_time"])
        targets = None
        if "target_user_ids" in fields:
            targets = [str(t) for t in fields["target_user_ids"]]  # type: ignore[attr-defined]
            self._check_targets(targets)
        view = self._notifications.update(
            notification_id,
            self._clock.now(),
            title=title,
            description=description,
            start_time=times["start_time"],
            end_time=times["end_time"],
            targets=targets,
        )
        if view is None:
            raise _not_found(notification_id)
        self._events.publish("notification", notification_id)
        return view

    def delete(self, who: Principal, notification_id: str) -> None:
        """Administrators: deletes a notification."""
        who.require_admin()
        if not self._notifications.delete(notification_id):
            raise _not_found(notification_id)
        self._events.publish("notification_deleted", notification_id)

    def dismiss(self, who: Principal, notification_id: str) -> None:
        """Hides a notification for the caller only (idempotent)."""
        targets = self._notifications.targets_of(notification_id)
        if targets is None:
            raise _not_found(notification_id)
        can_dismiss(targets, who.user_id)
        self._notifications.dismiss(notification_id, who.user_id)
        self._events.publish("notification", notification_id)
