"""Notification listings: visibility, filter, sort, page and count in SQL.

A user's feed is the notifications addressed to everyone or to them, inside their
window, not dismissed by them; all of it is a WHERE clause (EXISTS on the target and
dismissal tables' primary keys), so a page costs one page of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, and_, exists, literal, not_, or_, select

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import Notification, NotificationView
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import DATE, FieldSpec, Multi, run_listing
from qpi.server.store.tables import (
    NotificationDismissalRow,
    NotificationRow,
    NotificationTargetRow,
)

_NOTES = NotificationRow.__table__  # type: ignore[attr-defined]
_TARGETS = NotificationTargetRow.__table__  # type: ignore[attr-defined]
_DISMISSALS = NotificationDismissalRow.__table__  # type: ignore[attr-defined]

# The fields of `notifications` records.
NOTIFICATION_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_NOTES.c.id),
    "title": FieldSpec(_NOTES.c.title, free_text=True),
    "description": FieldSpec(_NOTES.c.description, free_text=True),
    "start_time": FieldSpec(_NOTES.c.start_time, DATE, nullable=True),
    "end_time": FieldSpec(_NOTES.c.end_time, DATE, nullable=True),
    "created": FieldSpec(_NOTES.c.created, DATE),
    "updated": FieldSpec(_NOTES.c.updated, DATE),
    "target_users": FieldSpec(
        _NOTES.c.id, multi=Multi(_NOTES.c.id, _TARGETS.c.notification_id, _TARGETS.c.user_id)
    ),
}
# Users see no targets in their feed's records: for them the list is always empty.
_FEED_FIELDS: Mapping[str, FieldSpec] = {
    **NOTIFICATION_FIELDS,
    "target_users": FieldSpec(literal(""), constant=True),
}
_COLUMNS = [
    _NOTES.c[n]
    for n in ("id", "title", "description", "start_time", "end_time", "created", "updated")
]
NEWEST_FIRST = (SortKey("created", descending=True),)


class NotificationListing(Protocol):
    """Lists notifications by an arbitrary filter and order, a page at a time."""

    def list_notifications_query(
        self,
        viewer: str,
        everything: bool,
        include_dismissed: bool,
        show_targets: bool,
        query: ListQuery,
        now: datetime,
    ) -> tuple[list[NotificationView], Total | None]:
        """One page of `viewer`'s feed (every notification with `everything`) matching
        `query`, with targets and the viewer's dismissals, and the number of matches
        (None when not counted). Without `show_targets` the records' target list reads
        as empty, as the viewer sees it. Raises INVALID_FILTER."""
        ...


def _dismissed_by(viewer: str) -> ColumnElement[bool]:
    return exists().where(
        _DISMISSALS.c.notification_id == _NOTES.c.id, _DISMISSALS.c.user_id == viewer
    )


def _feed(viewer: str, include_dismissed: bool, now: datetime) -> list[ColumnElement[bool]]:
    """The conditions of `viewer`'s feed at `now` (see domain.notifications.is_visible)."""
    targeted = or_(
        not_(exists().where(_TARGETS.c.notification_id == _NOTES.c.id)),
        exists().where(_TARGETS.c.notification_id == _NOTES.c.id, _TARGETS.c.user_id == viewer),
    )
    window = and_(
        or_(_NOTES.c.start_time.is_(None), _NOTES.c.start_time <= now),
        or_(_NOTES.c.end_time.is_(None), _NOTES.c.end_time >= now),
    )
    scope = [targeted, window]
    if not include_dismissed:
        scope.append(not_(_dismissed_by(viewer)))
    return scope


class SqlNotificationListing(SqlRepository):
    """NotificationListing on SQLite or PostgreSQL."""

    def list_notifications_query(
        self,
        viewer: str,
        everything: bool,
        include_dismissed: bool,
        show_targets: bool,
        query: ListQuery,
        now: datetime,
    ) -> tuple[list[NotificationView], Total | None]:
        scope = [] if everything else _feed(viewer, include_dismissed, now)
        dismissed = _dismissed_by(viewer).label("dismissed")
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                [*_COLUMNS, dismissed],
                scope,
                query,
                NOTIFICATION_FIELDS if show_targets else _FEED_FIELDS,
                tie_breakers=[_NOTES.c.id],
                default_sort=NEWEST_FIRST,
                now=now,
            )
            ids = [r["id"] for r in rows]
            targets: dict[str, list[str]] = {i: [] for i in ids}
            if ids and show_targets:  # a user's records show no targets: none to read
                found = select(_TARGETS.c.notification_id, _TARGETS.c.user_id).where(
                    _TARGETS.c.notification_id.in_(ids)
                )
                for note_id, user_id in conn.execute(found.order_by(_TARGETS.c.user_id)):
                    targets[note_id].append(user_id)
        views = [
            NotificationView(
                Notification(**{k: v for k, v in r.items() if k != "dismissed"}),
                tuple(targets[r["id"]]),
                bool(r["dismissed"]),
            )
            for r in rows
        ]
        return views, total
