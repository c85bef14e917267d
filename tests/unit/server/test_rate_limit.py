"""Telemetry token bucket."""

from qpi.server.drivers.rate_limit import TokenBucket


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    bucket = TokenBucket(3, now=0.0)
    assert [bucket.allow(now=0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(now=0.34)  # one token after 1/3 s
    assert not bucket.allow(now=0.35)


def test_non_positive_rate_is_unlimited() -> None:
    bucket = TokenBucket(0)
    assert all(bucket.allow() for _ in range(1000))
