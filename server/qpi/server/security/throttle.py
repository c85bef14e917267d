"""Login throttling: failed attempts per account and per client address.

Built on the ``limits`` library's moving-window limiter in process memory. Each replica
counts its own attempts, so with N replicas an attacker gets at most N times the allowance.
Only failures count: a user who knows their password is never locked out by their own
logins, while guessing (and the Argon2 work each guess costs) stops at the limit.
"""

from __future__ import annotations

import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from qpi.server.domain.errors import ResourceExhaustedError


def parse_limit(text: str) -> RateLimitItem | None:
    """A limit such as ``"10 per 15 minutes"`` or ``"30/minute"``; empty means none.

    Raises:
        ValueError: When the text is not a rate limit.
    """
    if not text.strip():
        return None
    return parse(text)


class LoginThrottle:
    """Refuses logins for an account or address after too many recent failures."""

    def __init__(self, per_account: str, per_address: str) -> None:
        """Limits in ``limits`` notation (e.g. ``"10 per 15 minutes"``); "" disables one."""
        self._account = parse_limit(per_account)
        self._address = parse_limit(per_address)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _checks(self, account: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        checks = []
        if self._account is not None:
            checks.append((self._account, "account", account))
        if self._address is not None and address:
            checks.append((self._address, "address", address))
        return checks

    def check(self, account: str, address: str) -> None:
        """Raise before any password work when either key is over its limit.

        Raises:
            ResourceExhaustedError: ``TOO_MANY_LOGIN_ATTEMPTS`` with ``retry_after``.
        """
        for item, kind, key in self._checks(account, address):
            if self._limiter.test(item, "login", kind, key):
                continue
            reset_at, _ = self._limiter.get_window_stats(item, "login", kind, key)
            wait = max(reset_at - time.time(), 1.0)
            raise ResourceExhaustedError(
                "TOO_MANY_LOGIN_ATTEMPTS",
                f"Too many failed logins for this {kind}; try again in {wait:.0f} seconds.",
                metadata={"limit": str(item), "scope": kind, "retry_after_seconds": f"{wait:.0f}"},
                retry_after=wait,
            )

    def failed(self, account: str, address: str) -> None:
        """Count one failed login against the account and the address."""
        for item, kind, key in self._checks(account, address):
            self._limiter.hit(item, "login", kind, key)
