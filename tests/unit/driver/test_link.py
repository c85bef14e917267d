"""The driver's server link without a server: backoff, refusal classification, and the
stream's helper tasks (clock, jitter and the gRPC call are injected)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from qpi.driver import link as link_module
from qpi.driver.bootstrap import Endpoint
from qpi.driver.link import HEALTHY_SESSION, WAITING_RETRY_MAX, Backoff, FatalLinkError, ServerLink
from qpi.driver.refusal import refusal_of
from qpi.driver.settings import DriverSettings
from qpi.v1 import driver_service_pb2 as pb


def _rich_error(
    code: grpc.StatusCode, reason: str, retry_after: float | None = None
) -> grpc.aio.AioRpcError:
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="qpi.v1"))
    details.append(info)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    status = status_pb2.Status(code=code.value[0], message="refused", details=details)
    trailers = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, "refused")


class Jitter:
    """Records each (low, high) range and answers 0 so tests never sleep."""

    def __init__(self) -> None:
        self.caps: list[float] = []

    def __call__(self, low: float, high: float) -> float:
        self.caps.append(high)
        return 0.0


def test_backoff_grows_to_its_cap_and_starts_over_after_reset() -> None:
    jitter = Jitter()
    backoff = Backoff(0.5, 4.0, rng=jitter)
    for _ in range(6):
        backoff.next()
    backoff.reset()
    backoff.next()
    assert jitter.caps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 0.5]


def test_waiting_delay_follows_the_hint_but_never_exceeds_the_cap() -> None:
    jitter = Jitter()
    backoff = Backoff(0.5, 10.0, rng=jitter)
    backoff.waiting(2.0)
    backoff.waiting(None)
    backoff.waiting(600.0)
    for _ in range(10):
        backoff.next()
    backoff.waiting(2.0)  # a long outage before does not stretch the disabled wait
    assert jitter.caps[:3] == [2.0, WAITING_RETRY_MAX, WAITING_RETRY_MAX]
    assert jitter.caps[-1] == 2.0


@pytest.mark.parametrize(
    ("code", "reason", "waits", "fatal"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, "DRIVER_DISABLED", True, False),
        (grpc.StatusCode.FAILED_PRECONDITION, "DRIVER_ALREADY_CONNECTED", True, False),
        (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", False, True),
        (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED", False, True),
        (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", False, False),
    ],
)
def test_refusals_are_classified_by_their_error_info_reason(
    code: grpc.StatusCode, reason: str, waits: bool, fatal: bool
) -> None:
    refusal = refusal_of(_rich_error(code, reason, retry_after=2.0))
    assert (refusal.reason, refusal.waits, refusal.fatal) == (reason, waits, fatal)
    assert refusal.retry_after == pytest.approx(2.0)
    assert reason in refusal.explain()


def test_a_status_without_details_falls_back_to_its_code() -> None:
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAUTHENTICATED, grpc.aio.Metadata(), grpc.aio.Metadata(), "no"
    )
    refusal = refusal_of(error)
    assert refusal.reason == ""
    assert refusal.fatal
    assert "access token" in refusal.explain()


class Handler:
    def __init__(self, heartbeat_error: Exception | None = None) -> None:
        self.heartbeat_error = heartbeat_error

    def hello(self) -> pb.DriverHello:
        return pb.DriverHello(name="unit")

    def heartbeat(self) -> pb.DriverHeartbeat:
        if self.heartbeat_error is not None:
            raise self.heartbeat_error
        return pb.DriverHeartbeat()

    def on_welcome(self, welcome: pb.ServerWelcome) -> None:
        pass

    def on_message(self, message: pb.ConnectResponse) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedLink(ServerLink):
    """Replaces the network session by a script of outcomes, one per attempt."""

    def __init__(self, script: list[Any], clock: Clock, jitter: Jitter) -> None:
        settings = DriverSettings(token="t", backoff_initial=0.5, backoff_max=8.0)
        super().__init__(
            settings, Handler(), lambda *a: Endpoint("x:1", None), clock=clock, rng=jitter
        )
        self.script = script
        self.clock = clock

    async def _session(self, endpoint: Endpoint) -> float:
        step = self.script.pop(0)
        if not self.script:
            self._closing.set()
        if isinstance(step, BaseException):
            raise step
        self._welcomed_at = self.clock.now
        self.clock.now += step  # the session lasted `step` seconds
        return self._welcomed_at


async def test_backoff_starts_over_only_after_a_healthy_session() -> None:
    clock, jitter = Clock(), Jitter()
    short = 0.5  # welcomed, then ended at once (e.g. the server closed it)
    link = ScriptedLink(
        [short, short, ConnectionError("down"), HEALTHY_SESSION + 1, short, "end"],
        clock,
        jitter,
    )
    await link.run()
    # A welcome alone no longer resets: short sessions keep growing the delay.
    assert jitter.caps == [0.5, 1.0, 2.0, 0.5, 1.0]


async def test_disabled_driver_retries_within_the_waiting_cap_and_token_errors_are_fatal() -> None:
    clock, jitter = Clock(), Jitter()
    disabled = _rich_error(grpc.StatusCode.PERMISSION_DENIED, "DRIVER_DISABLED", 2.0)
    bad = _rich_error(grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    link = ScriptedLink([disabled] * 8 + [bad, "never reached"], clock, jitter)
    with pytest.raises(FatalLinkError, match="TOKEN_INVALID"):
        await link.run()
    assert jitter.caps == [2.0] * 8


class FakeCall:
    """A stream whose writes fail (or not) and whose reads wait forever."""

    def __init__(self, write_error: Exception | None = None) -> None:
        self.write_error = write_error

    async def write(self, message: pb.ConnectRequest) -> None:
        if self.write_error is not None:
            raise self.write_error

    async def read(self) -> Any:
        await asyncio.Event().wait()

    async def done_writing(self) -> None:
        pass

    def done(self) -> bool:
        return False


def _link(handler: Handler) -> ServerLink:
    return ServerLink(DriverSettings(token="t"), handler, lambda *a: Endpoint("x:1", None))


async def test_a_failed_writer_is_logged_and_ends_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = _link(Handler())
    serving = asyncio.create_task(
        link._serve(FakeCall(RuntimeError("write refused")), pb.ServerWelcome())
    )
    await asyncio.wait_for(link.connected.wait(), 5)
    link.send(pb.ConnectRequest(heartbeat=pb.DriverHeartbeat()))
    with (
        caplog.at_level(logging.ERROR, logger=link_module.__name__),
        pytest.raises(ConnectionError, match="write refused"),
    ):
        await asyncio.wait_for(serving, 5)
    assert any("writer task" in r.getMessage() and r.exc_info for r in caplog.records)
    assert not link.connected.is_set()


async def test_a_failed_heartbeat_is_logged_and_ends_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = _link(Handler(heartbeat_error=ValueError("no heartbeat")))
    link.heartbeat_interval = 0.01
    with (
        caplog.at_level(logging.ERROR, logger=link_module.__name__),
        pytest.raises(ConnectionError, match="no heartbeat"),
    ):
        await asyncio.wait_for(link._serve(FakeCall(), pb.ServerWelcome()), 5)
    assert any("heartbeat task" in r.getMessage() and r.exc_info for r in caplog.records)
