"""Notifications with their per-user targets and dismissals."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, delete, select

from qpi.server.domain.models import Notification, NotificationView
from qpi.server.store.base import SqlRepository
from qpi.server.store.tables import (
    NotificationDismissalRow,
    NotificationRow,
    NotificationTargetRow,
    UserRow,
)


class NotificationRepository(Protocol):
    """Notifications, targets and dismissals."""

    def get(self, notification_id: str) -> Notification | None:
        """One notification."""
        ...

    def targets_of(self, notification_id: str) -> frozenset[str] | None:
        """A notification's target users; None if there is no such notification."""
        ...

    def missing_users(self, user_ids: Collection[str]) -> list[str]:
        """Those of `user_ids` that name no user, in the given order."""
        ...

    def insert(
        self,
        title: str,
        description: str,
        start_time: datetime | None,
        end_time: datetime | None,
        targets: Collection[str],
    ) -> NotificationView:
        """Adds a notification addressed to `targets` (everyone when empty)."""
        ...

    def update(
        self,
        notification_id: str,
        now: datetime,
        *,
        title: str,
        description: str,
        start_time: datetime | None,
        end_time: datetime | None,
        targets: Collection[str] | None,
    ) -> NotificationView | None:
        """Replaces the fields (and targets, unless None); None if it is gone."""
        ...

    def delete(self, notification_id: str) -> bool:
        """Deletes a notification; False if there was none."""
        ...

    def dismiss(self, notification_id: str, user_id: str) -> None:
        """Records a user's dismissal (idempotent)."""
        ...


def to_notification(row: NotificationRow) -> Notification:
    """The domain record of a notification row."""
    return Notification(
        id=row.id,
        title=row.title,
        description=row.description,
        start_time=row.start_time,
        end_time=row.end_time,
        created=row.created,
        updated=row.updated,
    )


def _targets(s: Session, ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {i: set() for i in ids}
    for t in s.exec(
        select(NotificationTargetRow).where(col(NotificationTargetRow.notification_id).in_(ids))
    ).all():
        out[t.notification_id].add(t.user_id)
    return out


def _replace_targets(s: Session, notification_id: str, targets: Collection[str]) -> None:
    s.execute(
        delete(NotificationTargetRow).where(
            col(NotificationTargetRow.notification_id) == notification_id
        )
    )
    for t in sorted(set(targets)):
        s.add(NotificationTargetRow(notification_id=notification_id, user_id=t))


class SqlNotificationRepository(SqlRepository):
    """NotificationRepository on SQLite or PostgreSQL."""

    def get(self, notification_id: str) -> Notification | None:
        with self._session() as s:
            row = s.get(NotificationRow, notification_id)
        return to_notification(row) if row else None

    def targets_of(self, notification_id: str) -> frozenset[str] | None:
        with self._session() as s:
            if s.get(NotificationRow, notification_id) is None:
                return None
            return frozenset(_targets(s, [notification_id])[notification_id])

    def missing_users(self, user_ids: Collection[str]) -> list[str]:
        with self._session() as s:
            known = set(s.exec(select(UserRow.id).where(col(UserRow.id).in_(list(user_ids)))).all())
        return [u for u in user_ids if u not in known]

    def insert(
        self,
        title: str,
        description: str,
        start_time: datetime | None,
        end_time: datetime | None,
        targets: Collection[str],
    ) -> NotificationView:
        row = NotificationRow(
            title=title, description=description, start_time=start_time, end_time=end_time
        )
        with self._session() as s:
            s.add(row)
            s.flush()
            for t in sorted(set(targets)):
                s.add(NotificationTargetRow(notification_id=row.id, user_id=t))
            s.commit()
        return NotificationView(to_notification(row), tuple(sorted(set(targets))), False)

    def update(
        self,
        notification_id: str,
        now: datetime,
        *,
        title: str,
        description: str,
        start_time: datetime | None,
        end_time: datetime | None,
        targets: Collection[str] | None,
    ) -> NotificationView | None:
        with self._session() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                return None
            row.title, row.description = title, description
            row.start_time, row.end_time = start_time, end_time
            if targets is not None:
                _replace_targets(s, row.id, targets)
            row.updated = now
            s.add(row)
            s.commit()
            targets_now = _targets(s, [row.id])[row.id]
        return NotificationView(to_notification(row), tuple(sorted(targets_now)), False)

    def delete(self, notification_id: str) -> bool:
        with self._session() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                return False
            s.delete(row)
            s.commit()
        return True

    def dismiss(self, notification_id: str, user_id: str) -> None:
        with self._session() as s:
            if s.get(NotificationDismissalRow, (notification_id, user_id)) is None:
                s.add(NotificationDismissalRow(notification_id=notification_id, user_id=user_id))
                s.commit()
