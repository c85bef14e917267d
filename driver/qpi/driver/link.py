"""The Connect stream to the server: hello/welcome, heartbeats, reconnects with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any, Protocol

import grpc  # type: ignore[import-untyped, unused-ignore]
import httpx

from qpi.driver.bootstrap import Endpoint, SecurityError, discover
from qpi.driver.settings import DriverSettings
from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

FATAL_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
DEFAULT_HEARTBEAT = 5.0
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


class ServerLink:
    """Keeps one Connect stream open, reconnecting forever until closed.

    Args:
        settings: Driver settings (address, token, CA pinning, backoff).
        handler: The daemon.
        discover_fn: Bootstrap function (replaceable in tests).
    """

    def __init__(
        self,
        settings: DriverSettings,
        handler: LinkHandler,
        discover_fn: Callable[..., Endpoint] = discover,
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._discover = discover_fn
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

        Raises:
            FatalLinkError: If the server rejects the token.
            SecurityError: If the server's CA fails the pin check.
        """
        attempt = 0
        while not self._closing.is_set():
            welcomed = False
            try:
                endpoint = await asyncio.to_thread(
                    self._discover,
                    self._settings.qpi_addr,
                    self._settings.ca_fingerprint,
                    self._settings.ca_file,
                    self._settings.grpc_addr,
                )
                welcomed = await self._session(endpoint)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in FATAL_CODES:
                    raise FatalLinkError(
                        f"the server rejected this driver ({exc.code().name}: {exc.details()}); "
                        "check the access token and the QPU it belongs to"
                    ) from exc
                log.warning("stream to server lost: %s %s", exc.code().name, exc.details())
            except (httpx.HTTPError, OSError, ConnectionError, TimeoutError, ValueError) as exc:
                log.warning("cannot reach the server at %s: %s", self._settings.qpi_addr, exc)
            except (SecurityError, FatalLinkError):
                raise
            except Exception:  # keep serving: one bad message must not take the QPU offline
                log.exception("unexpected error on the server link; reconnecting")
            attempt = 0 if welcomed else attempt + 1
            if self._closing.is_set():
                break
            # The exponent is bounded: after hours of outage 2**attempt would overflow.
            growth = 2 ** min(attempt, 30)
            cap = min(self._settings.backoff_max, self._settings.backoff_initial * growth)
            delay = random.uniform(cap / 2, cap)
            log.info("reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def _session(self, endpoint: Endpoint) -> bool:
        """Runs one stream; returns True if a welcome was received."""
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
            await call.write(pb.ConnectRequest(hello=self._handler.hello()))
            first: Any = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT)
            if first is grpc.aio.EOF or not first.HasField("welcome"):
                raise ConnectionError("the server did not answer hello with welcome")
            welcome = first.welcome
            self.heartbeat_interval = _seconds(welcome.heartbeat_interval, DEFAULT_HEARTBEAT)
            log.info(
                "connected to %s (server %s) as driver %s",
                endpoint.target,
                welcome.server_version or endpoint.server_version,
                welcome.driver_id,
            )
            outbox: asyncio.Queue[pb.ConnectRequest | None] = asyncio.Queue()
            self._outbox = outbox
            writer = asyncio.create_task(self._write_loop(call, outbox))
            beats = asyncio.create_task(self._heartbeat_loop())
            self.connected.set()
            try:
                self._handler.on_welcome(welcome)
                while True:
                    message: Any = await call.read()
                    if message is grpc.aio.EOF:
                        if not self._closing.is_set():
                            log.warning("the server closed the stream")
                        return True
                    self._handler.on_message(message)
            finally:
                self.connected.clear()
                self._outbox = None
                self._call = None
                beats.cancel()
                writer.cancel()
                await asyncio.gather(writer, beats, return_exceptions=True)

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
