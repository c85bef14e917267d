"""Token bucket limiting how many telemetry events one driver may report per second."""

from __future__ import annotations

import time


class TokenBucket:
    """`rate` tokens per second with a burst of `rate`; rate ≤ 0 means unlimited."""

    def __init__(self, rate: float, now: float | None = None) -> None:
        self._rate = rate
        self._tokens = max(rate, 0.0)
        self._stamp = time.monotonic() if now is None else now

    def allow(self, now: float | None = None) -> bool:
        """Takes a token if one is available."""
        if self._rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
