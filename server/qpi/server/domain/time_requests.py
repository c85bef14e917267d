"""QPU-time requests: a user asks for seconds, an administrator approves or rejects.

A request starts ``pending`` and is processed exactly once. Approval credits the
requested seconds to the owner's balance (additively).
"""

from __future__ import annotations

import math
from enum import StrEnum

from qpi.server.domain.errors import FailedPreconditionError, invalid_field


class TimeRequestState(StrEnum):
    """Processing state of a time request."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


MAX_REQUEST_SECONDS = 1e9
"""About 31 years of QPU time: larger requests are typing mistakes."""


def validate_seconds(seconds: float) -> float:
    """Check the amount of a new request.

    Returns:
        ``seconds`` unchanged.

    Raises:
        InvalidArgumentError: ``INVALID_FIELD`` on ``seconds`` unless finite and > 0.
    """
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_REQUEST_SECONDS):
        raise invalid_field(
            "seconds",
            f"seconds must be greater than 0 and at most {MAX_REQUEST_SECONDS:.0f}, got {seconds}.",
            value=seconds,
        )
    return seconds


def ensure_pending(state: TimeRequestState | str, action: str = "update") -> None:
    """Raise unless the request is still pending.

    Args:
        state: Current state.
        action: Verb for the message (``"update"`` or ``"delete"``).

    Raises:
        FailedPreconditionError: ``TIME_REQUEST_PROCESSED``.
    """
    current = TimeRequestState(state)
    if current is not TimeRequestState.PENDING:
        raise FailedPreconditionError(
            "TIME_REQUEST_PROCESSED",
            f"Cannot {action} a request that has already been processed.",
            metadata={"action": action, "state": current.value},
        )


def transition(state: TimeRequestState | str, target: TimeRequestState | str) -> TimeRequestState:
    """Move a request to ``approved`` or ``rejected``.

    Args:
        state: Current state; must be ``pending``.
        target: ``approved`` or ``rejected``.

    Returns:
        The new state.

    Raises:
        InvalidArgumentError: ``INVALID_FIELD`` on ``state`` if ``target`` is not a
            processed state (or not a state at all).
        FailedPreconditionError: ``TIME_REQUEST_PROCESSED`` if already processed.
    """
    try:
        goal = TimeRequestState(target)
    except ValueError:
        goal = None
    if goal not in (TimeRequestState.APPROVED, TimeRequestState.REJECTED):
        raise invalid_field(
            "state",
            f"A time request can only be approved or rejected, not set to '{target}'.",
            value=str(target),
        )
    ensure_pending(state)
    assert goal is not None
    return goal


def approve(state: TimeRequestState | str) -> TimeRequestState:
    """Approve a pending request (see :func:`transition`)."""
    return transition(state, TimeRequestState.APPROVED)


def reject(state: TimeRequestState | str) -> TimeRequestState:
    """Reject a pending request (see :func:`transition`)."""
    return transition(state, TimeRequestState.REJECTED)


def credit(balance: float, seconds: float) -> float:
    """Balance after approving a request for ``seconds``."""
    return max(balance, 0.0) + seconds
