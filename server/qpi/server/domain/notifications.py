"""Notification visibility and dismissal with per-user set semantics.

A notification targets a set of users (empty = everyone). Each user's dismissal is
recorded separately and hides the notification only from that user.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime

from qpi.server.domain.errors import PermissionDeniedError


def is_targeted(targets: Set[str], user_id: str) -> bool:
    """Tell whether ``user_id`` is addressed (an empty target set is a broadcast)."""
    return not targets or user_id in targets


def is_visible(
    notification_targets: Set[str],
    start: datetime | None,
    end: datetime | None,
    dismissed_by: Set[str],
    user_id: str,
    now: datetime,
) -> bool:
    """Tell whether a user's feed shows the notification at ``now``.

    Args:
        notification_targets: Addressed users; empty means everyone.
        start: Start of the visibility window (inclusive); ``None`` = always started.
        end: End of the visibility window (inclusive); ``None`` = never ends.
        dismissed_by: Users who dismissed it.
        user_id: The viewer.
        now: Current time.
    """
    return (
        is_targeted(notification_targets, user_id)
        and (start is None or start <= now)
        and (end is None or now <= end)
        and user_id not in dismissed_by
    )


def can_dismiss(targets: Set[str], user_id: str) -> bool:
    """Check that ``user_id`` may dismiss a notification with these targets.

    Returns:
        ``True`` when allowed (it never returns ``False``).

    Raises:
        PermissionDeniedError: ``PERMISSION_DENIED`` if it targets other users only.
    """
    if not is_targeted(targets, user_id):
        raise PermissionDeniedError(
            "PERMISSION_DENIED",
            "Access denied: this notification is not addressed to you.",
        )
    return True


def dismiss(dismissed_by: Set[str], targets: Set[str], user_id: str) -> frozenset[str]:
    """Record ``user_id``'s dismissal (idempotent; other users' dismissals are kept).

    Returns:
        The new set of dismissers.

    Raises:
        PermissionDeniedError: As :func:`can_dismiss`.
    """
    can_dismiss(targets, user_id)
    return frozenset(dismissed_by) | {user_id}
