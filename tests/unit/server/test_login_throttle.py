"""The login throttle counts failures per account and per address."""

from __future__ import annotations

import pytest

from qpi.server.domain.errors import ResourceExhaustedError
from qpi.server.security.throttle import LoginThrottle, parse_limit


def test_failures_per_account_block_that_account_only() -> None:
    throttle = LoginThrottle("3 per minute", "")
    for _ in range(3):
        throttle.check("ada@example.org", "10.0.0.1")
        throttle.failed("ada@example.org", "10.0.0.1")
    with pytest.raises(ResourceExhaustedError) as blocked:
        throttle.check("ada@example.org", "10.0.0.2")
    assert blocked.value.reason == "TOO_MANY_LOGIN_ATTEMPTS"
    assert blocked.value.retry_after is not None
    assert 1.0 <= blocked.value.retry_after <= 60.0
    assert blocked.value.metadata["scope"] == "account"
    throttle.check("bob@example.org", "10.0.0.1")


def test_failures_per_address_block_every_account_from_it() -> None:
    throttle = LoginThrottle("", "2 per hour")
    throttle.failed("a@example.org", "10.0.0.1")
    throttle.failed("b@example.org", "10.0.0.1")
    with pytest.raises(ResourceExhaustedError, match="this address"):
        throttle.check("c@example.org", "10.0.0.1")
    throttle.check("c@example.org", "10.0.0.2")
    throttle.check("c@example.org", "")  # unknown address: only the account limit applies


def test_limits_parse_or_fail() -> None:
    assert parse_limit("") is None
    assert parse_limit("10 per 15 minutes") is not None
    with pytest.raises(ValueError):
        parse_limit("often")
