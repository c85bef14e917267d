"""Announcements with per-user targets and dismissals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, delete, select

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.domain.notifications import can_dismiss, is_visible
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.store.tables import (
    NotificationDismissalRow,
    NotificationRow,
    NotificationTargetRow,
    UserRow,
)


@dataclass(frozen=True)
class NotificationView:
    """A notification with its targets, as seen by one user."""

    row: NotificationRow
    targets: tuple[str, ...]
    dismissed: bool


def _not_found(notification_id: str) -> NotFoundError:
    return NotFoundError(
        "NOTIFICATION_NOT_FOUND", "Notification not found.", metadata={"id": notification_id}
    )


class NotificationService:
    """Notification use cases."""

    def __init__(self, db: Database, clock: Clock, events: EventBus) -> None:
        self._db = db
        self._clock = clock
        self._events = events

    def _targets(self, s: Session, ids: list[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {i: set() for i in ids}
        for t in s.exec(
            select(NotificationTargetRow).where(col(NotificationTargetRow.notification_id).in_(ids))
        ).all():
            out[t.notification_id].add(t.user_id)
        return out

    def _dismissed(self, s: Session, ids: list[str], user_id: str) -> set[str]:
        return set(
            s.exec(
                select(NotificationDismissalRow.notification_id).where(
                    col(NotificationDismissalRow.notification_id).in_(ids),
                    NotificationDismissalRow.user_id == user_id,
                )
            ).all()
        )

    def list_visible(
        self, who: Principal, all_: bool, include_dismissed: bool
    ) -> list[NotificationView]:
        """Notifications visible to the caller, newest first (admins: all with `all_`)."""
        if all_:
            who.require_admin()
        now = self._clock.now()
        with self._db.session() as s:
            rows = list(
                s.exec(select(NotificationRow).order_by(col(NotificationRow.created).desc())).all()
            )
            ids = [r.id for r in rows]
            targets = self._targets(s, ids)
            dismissed = self._dismissed(s, ids, who.user_id)
        views = []
        for r in rows:
            mine = {who.user_id} if r.id in dismissed else set()
            visible = is_visible(
                targets[r.id],
                r.start_time,
                r.end_time,
                set() if include_dismissed else mine,
                who.user_id,
                now,
            )
            if all_ or visible:
                views.append(NotificationView(r, tuple(sorted(targets[r.id])), r.id in dismissed))
        return views

    def get(self, who: Principal, notification_id: str) -> NotificationView:
        """One notification visible to the caller."""
        for view in self.list_visible(who, who.is_superuser, True):
            if view.row.id == notification_id:
                return view
        raise _not_found(notification_id)

    def _check_targets(self, s: Session, targets: list[str]) -> None:
        known = set(s.exec(select(UserRow.id).where(col(UserRow.id).in_(targets))).all())
        missing = [t for t in targets if t not in known]
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
        row = NotificationRow(
            title=title.strip(), description=description, start_time=start, end_time=end
        )
        with self._db.session() as s:
            self._check_targets(s, targets)
            s.add(row)
            s.flush()
            for t in sorted(set(targets)):
                s.add(NotificationTargetRow(notification_id=row.id, user_id=t))
            s.commit()
        self._events.publish("notification", row.id)
        return NotificationView(row, tuple(sorted(set(targets))), False)

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
        with self._db.session() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                raise _not_found(notification_id)
            if "title" in fields:
                row.title = str(fields["title"]).strip()
            if "description" in fields:
                row.description = str(fields["description"])
            for key in ("start_time", "end_time"):
                if key in fields:
                    value = fields[key]
                    setattr(row, key, value if isinstance(value, datetime) else None)
            self._validate(row.title, row.start_time, row.end_time)
            if "target_user_ids" in fields:
                targets = [str(t) for t in fields["target_user_ids"]]  # type: ignore[attr-defined]
                self._check_targets(s, targets)
                s.execute(
                    delete(NotificationTargetRow).where(
                        col(NotificationTargetRow.notification_id) == row.id
                    )
                )
                for t in sorted(set(targets)):
                    s.add(NotificationTargetRow(notification_id=row.id, user_id=t))
            row.updated = self._clock.now()
            s.add(row)
            s.commit()
            targets_now = self._targets(s, [row.id])[row.id]
        self._events.publish("notification", row.id)
        return NotificationView(row, tuple(sorted(targets_now)), False)

    def delete(self, who: Principal, notification_id: str) -> None:
        """Administrators: deletes a notification."""
        who.require_admin()
        with self._db.session() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                raise _not_found(notification_id)
            s.delete(row)
            s.commit()
        self._events.publish("notification_deleted", notification_id)

    def dismiss(self, who: Principal, notification_id: str) -> None:
        """Hides a notification for the caller only (idempotent)."""
        with self._db.session() as s:
            row = s.get(NotificationRow, notification_id)
            if row is None:
                raise _not_found(notification_id)
            can_dismiss(self._targets(s, [row.id])[row.id], who.user_id)
            if s.get(NotificationDismissalRow, (notification_id, who.user_id)) is None:
                s.add(
                    NotificationDismissalRow(notification_id=notification_id, user_id=who.user_id)
                )
                s.commit()
        self._events.publish("notification", notification_id)
