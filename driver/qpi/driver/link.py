"""The Connect stream to the server: hello/welcome, heartbeats, reconnects with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc  # type: ignore[import-untyped, unused-ignore]
import httpx

from qpi.driver.bootstrap import Endpoint, SecurityError, discover
from qpi.driver.refusal import Refusal, refusal_of
from qpi.driver.settings import DriverSettings
from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT = 5.0
HEALTHY_SESSION = 10.0
"""Seconds a welcomed stream must last before the reconnect backoff starts over: a stream
the server ends at once (a refused or replaced session) must not reconnect in a tight loop."""
WAITING_RETRY_MAX = 3.0
"""Most seconds a disabled driver waits between attempts, so it re-attaches within a few
seconds of being enabled again (the server's RetryInfo hint may shorten the wait)."""
WELCOME_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0
"""Seconds a connection (TCP + TLS + HTTP/2) may take; a path that swallows packets would
otherwise hold each attempt in the TLS handshake for gRPC's 20 s minimum."""
CHANNEL_OPTIONS = [
    # A silently dead path (dropped NAT entry, cut cable) is noticed within ~10 s: a ping
    # every 5 s that must be answered within 5 s. The server's enforcement policy accepts
    # pings this frequent (qpi.server.rpc.server.KEEPALIVE_OPTIONS).
    ("grpc.keepalive_time_ms", 5_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # gRPC core otherwise waits its general ping timeout (60 s) for an unanswered ping.
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect promptly once the path is back (the default backoff grows to 2 minutes).
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


# The stream call is typed loosely: grpc's stubs are optional in this workspace.
_Call = Any


class FatalLinkError(RuntimeError):
    """The server refused the driver for good (bad token, wrong permissions)."""


class LinkHandler(Protocol):
    """What the link needs from the daemon."""

    def hello(self) -> pb.DriverHello:
        """Builds the hello for a new stream."""

    def heartbeat(self) -> pb.DriverHeartbeat:
        """Builds a heartbeat."""

    def on_welcome(self, welcome: pb.ServerWelcome) -> None:
        """Reconciles held jobs; may call `ServerLink.send` to resend results."""

    def on_message(self, message: pb.ConnectResponse) -> None:
        """Handles one server message."""


def _seconds(duration: object, default: float) -> float:
    total = getattr(duration, "seconds", 0) + getattr(duration, "nanos", 0) / 1e9
    return total if total > 0 else default


@dataclass
class Backoff:
    """Reconnect delays: exponential with jitter, starting over after a healthy session.

    Attributes:
        initial: First delay cap in seconds.
        maximum: Largest delay cap in seconds.
        rng: `uniform(a, b)`; each delay is drawn from [cap/2, cap].
    """

    initial: float
    maximum: float
    rng: Callable[[float, float], float] = random.uniform
    failures: int = 0

    def reset(self) -> None:
        """A session was healthy: the next delay is short again."""
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt after a failure."""
        # The exponent is bounded: after hours of outage 2**failures would overflow.
        cap = min(self.maximum, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return self.rng(cap / 2, cap)

    def waiting(self, hint: float | None) -> float:
        """The delay while the server refuses for a reason that can end at any moment
        (disabled, token in use): the server's hint, never above WAITING_RETRY_MAX, so a
        re-enabled driver is back within seconds without hammering the server."""
        cap = min(hint if hint is not None and hint > 0 else WAITING_RETRY_MAX, WAITING_RETRY_MAX)
        cap = max(cap, min(self.initial, WAITING_RETRY_MAX))
        return self.rng(cap / 2, cap)


class ServerLink:
    """Keeps one Connect stream open, reconnecting forever until closed.

    Args:
        settings: Driver settings (address, token, CA pinning, backoff).
        handler: The daemon.
        discover_fn: Bootstrap function (replaceable in tests).
        clock: Monotonic clock (replaceable in tests).
        rng: `uniform(a, b)` used for jitter (replaceable in tests).
    """

    def __init__(
        self,
        settings: DriverSettings,
        handler: LinkHandler,
        discover_fn: Callable[..., Endpoint] = discover,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._discover = discover_fn
        self._clock = clock
        self._rng = rng
        self._welcomed_at: float | None = None
        self._outbox: asyncio.Queue[pb.ConnectRequest | None] | None = None
        self._call: _Call | None = None
        self._closing = asyncio.Event()
        self.connected = asyncio.Event()
        self.heartbeat_interval = DEFAULT_HEARTBEAT

    def send(self, message: pb.ConnectRequest) -> bool:
        """Queues a message on the current stream; returns False if there is none."""
        if self._outbox is None:
            return False
        self._outbox.put_nowait(message)
        return True

    async def run(self) -> None:
        """Connects and reconnects until `close` is called.

        A disabled driver (an administrator's choice, reason DRIVER_DISABLED) and a driver
        whose token is already in use by a live stream (DRIVER_ALREADY_CONNECTED) keep
        retrying; every other refusal is fatal.

        Raises:
            FatalLinkError: If the server rejects the token.
            SecurityError: If the server's CA fails the pin check.
        """
        backoff = Backoff(self._settings.backoff_initial, self._settings.backoff_max, rng=self._rng)
        waiting: Refusal | None = None  # the refusal currently being waited out
        while not self._closing.is_set():
            self._welcomed_at = None
            started: float | None = None
            refusal: Refusal | None = None
            try:
                endpoint = await asyncio.to_thread(
                    self._discover,
                    self._settings.qpi_addr,
                    self._settings.ca_fingerprint,
                    self._settings.ca_file,
                    self._settings.grpc_addr,
                )
                started = await self._session(endpoint)
            except grpc.aio.AioRpcError as exc:
                started = self._welcomed_at
                refusal = refusal_of(exc)
                if refusal.fatal:
                    raise FatalLinkError(refusal.explain()) from exc
                if not refusal.waits:
                    log.warning("stream to server lost: %s %s", exc.code().name, exc.details())
            except (httpx.HTTPError, OSError, ConnectionError, TimeoutError, ValueError) as exc:
                started = self._welcomed_at
                log.warning("cannot reach the server at %s: %s", self._settings.qpi_addr, exc)
            except (SecurityError, FatalLinkError):
                raise
            except Exception:  # keep serving: one bad message must not take the QPU offline
                started = self._welcomed_at
                log.exception("unexpected error on the server link; reconnecting")
            waiting = self._report_waiting(waiting, refusal)
            if started is not None and self._clock() - started >= HEALTHY_SESSION:
                backoff.reset()
            if self._closing.is_set():
                break
            if refusal is not None and refusal.waits:
                delay = backoff.waiting(refusal.retry_after)
            else:
                delay = backoff.next()
            log.log(logging.DEBUG if waiting else logging.INFO, "reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    def _report_waiting(self, waiting: Refusal | None, refusal: Refusal | None) -> Refusal | None:
        """Logs a waiting refusal once when it starts and once when it ends."""
        current = refusal if refusal is not None and refusal.waits else None
        if current is not None and (waiting is None or waiting.reason != current.reason):
            duplicate = current.reason == "DRIVER_ALREADY_CONNECTED"
            log.log(logging.ERROR if duplicate else logging.WARNING, "%s", current.explain())
        elif current is None and waiting is not None and self._welcomed_at is not None:
            log.info("the server accepts this driver again (%s is over)", waiting.reason)
        return current

    async def _session(self, endpoint: Endpoint) -> float:
        """Runs one stream until it ends; returns when it was welcomed (`clock` time).

        Raises whatever ended the stream, except a clean end by the server.
        """
        self._welcomed_at = None
        if endpoint.credentials is None:
            channel = grpc.aio.insecure_channel(endpoint.target, options=CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(
                endpoint.target, endpoint.credentials, options=CHANNEL_OPTIONS
            )
        async with channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
            except TimeoutError:
                raise ConnectionError(
                    f"no connection to {endpoint.target} within {CONNECT_TIMEOUT:g} s"
                ) from None
            stub = pb_grpc.DriverServiceStub(channel)
            call = stub.Connect(metadata=(("authorization", f"Bearer {self._settings.token}"),))
            self._call = call
            try:
                await call.write(pb.ConnectRequest(hello=self._handler.hello()))
                first: Any = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT)
            except (asyncio.InvalidStateError, grpc.aio.UsageError):
                # Writing to a stream the server already ended: its status says why.
                first = grpc.aio.EOF
            if first is grpc.aio.EOF or not first.HasField("welcome"):
                if first is grpc.aio.EOF:
                    await self._raise_status(call, wait=True)
                raise ConnectionError("the server did not answer hello with welcome")
            welcome = first.welcome
            self._welcomed_at = self._clock()
            self.heartbeat_interval = _seconds(welcome.heartbeat_interval, DEFAULT_HEARTBEAT)
            log.info(
                "connected to %s (server %s) as driver %s",
                endpoint.target,
                welcome.server_version or endpoint.server_version,
                welcome.driver_id,
            )
            await self._serve(call, welcome)
            return self._welcomed_at

    async def _serve(self, call: _Call, welcome: pb.ServerWelcome) -> None:
        """Reads the stream while the writer and heartbeat tasks run beside it.

        Whichever of the three fails first ends the session, and its failure is logged:
        a writer or heartbeat task that died silently would leave a stream that reads but
        never answers, until the server times the driver out.
        """
        outbox: asyncio.Queue[pb.ConnectRequest | None] = asyncio.Queue()
        self._outbox = outbox
        writer = asyncio.create_task(self._write_loop(call, outbox), name="link-writer")
        beats = asyncio.create_task(self._heartbeat_loop(), name="link-heartbeat")
        reader = asyncio.create_task(self._read_loop(call, welcome), name="link-reader")
        tasks = {writer, beats, reader}
        self.connected.set()
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    reader.result()  # the stream's own end, or its error
                    return
                for task in done:
                    tasks.discard(task)
                    if task.cancelled():
                        continue
                    error = task.exception()
                    if error is not None:
                        log.error(
                            "the %s task of the server stream failed; reconnecting",
                            task.get_name().removeprefix("link-"),
                            exc_info=error,
                        )
                        await self._raise_status(call)
                        raise ConnectionError(f"{task.get_name()} failed: {error!r}") from error
                    # The writer ends normally after close() asked it to half-close.
        finally:
            self.connected.clear()
            self._outbox = None
            self._call = None
            for task in (reader, beats, writer):
                task.cancel()
            await asyncio.gather(reader, writer, beats, return_exceptions=True)

    async def _read_loop(self, call: _Call, welcome: pb.ServerWelcome) -> None:
        self._handler.on_welcome(welcome)
        while True:
            message: Any = await call.read()
            if message is grpc.aio.EOF:
                await self._raise_status(call, wait=True)
                if not self._closing.is_set():
                    log.warning("the server closed the stream")
                return
            self._handler.on_message(message)

    @staticmethod
    async def _raise_status(call: _Call, wait: bool = False) -> None:
        """Raises the stream's final status if it is an error (e.g. DRIVER_DISABLED).

        Args:
            call: The stream.
            wait: The server ended the stream (EOF), so its status is on the way.
        """
        if not wait and not call.done():
            return
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise grpc.aio.AioRpcError(
                code,
                await call.initial_metadata(),
                await call.trailing_metadata(),
                await call.details(),
            )

    async def _write_loop(
        self,
        call: _Call,
        outbox: asyncio.Queue[pb.ConnectRequest | None],
    ) -> None:
        # One writer task: gRPC allows a single outstanding write per stream.
        while True:
            message = await outbox.get()
            if message is None:
                await call.done_writing()
                return
            await call.write(message)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.send(pb.ConnectRequest(heartbeat=self._handler.heartbeat()))

    async def close(self, reason: str, timeout: float = 3.0) -> None:
        """Says goodbye, half-closes the stream and stops reconnecting."""
        self._closing.set()
        call = self._call
        if self.send(pb.ConnectRequest(goodbye=pb.DriverGoodbye(reason=reason))):
            assert self._outbox is not None
            self._outbox.put_nowait(None)
            if call is not None:
                # Waiting for the server to end the stream makes sure the goodbye arrived.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_disconnected(), timeout)
        if self._call is not None:
            self._call.cancel()

    async def _wait_disconnected(self) -> None:
        while self.connected.is_set():
            await asyncio.sleep(0.01)
