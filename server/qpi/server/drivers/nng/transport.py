"""The NNG compatibility transport: handshakes, port allocation and every driver's channel.

The second transport behind the driver hub (the first is DriverService.Connect over gRPC):
it turns the published daemons' HTTP handshake and NNG pipes into hub sessions, so NNG
drivers share the scheduler, leases and flow control of native ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

import pynng

from qpi.server.domain.errors import PermissionDeniedError, UnavailableError
from qpi.server.drivers.nng.channel import ChannelConfig, ChannelDeps, NngChannel
from qpi.server.drivers.nng.envelope import WIRES
from qpi.server.drivers.nng.sockets import TlsMaterial
from qpi.server.services.auth_service import DriverIdentity
from qpi.server.services.events import EventBus
from qpi.server.store.nng_ports import NngPorts, PortRangeExhausted

logger = logging.getLogger(__name__)

_BIND_ATTEMPTS = 3


@dataclass(frozen=True)
class PortRange:
    """Where listener ports come from: [start, end)."""

    start: int
    end: int


@dataclass(frozen=True)
class OpenedChannel:
    """What a handshake answers."""

    driver_id: str
    name: str
    qpu_id: str
    nng_host: str
    in_port: int
    out_port: int
    ca_fingerprint: str


class NngTransport:
    """Owns one NngChannel per NNG driver."""

    def __init__(
        self,
        deps: ChannelDeps,
        config: ChannelConfig,
        ports: PortRange,
        advertised_host: str,
        tls: TlsMaterial,
        ca_fingerprint: str,
    ) -> None:
        self._deps = deps
        self._config = config
        self._range = ports
        self._host = advertised_host
        self._tls = tls
        self._fingerprint = ca_fingerprint
        self._channels: dict[str, NngChannel] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def channel(self, driver_id: str) -> NngChannel | None:
        """The channel of a driver, if it has one."""
        return self._channels.get(driver_id)

    async def restore(self) -> None:
        """Re-opens the listeners of every enabled driver (at start-up).

        The published daemons never repeat their HTTP handshake; they only redial the
        ports they were given, so those must be back after a restart.
        """
        d = self._deps
        for ports in await d.db.run(d.ports.enabled_assignments):
            async with self._lock(ports.driver_id):
                if ports.driver_id in self._channels:  # its daemon's handshake came first
                    continue
                channel = NngChannel(ports, d, self._config, self._tls)
                try:
                    channel.start()
                except pynng.NNGException as exc:
                    logger.error(
                        "[NNG] cannot restore listeners of driver %s on ports %d/%d: %s; "
                        "it gets new ports when its daemon restarts",
                        ports.driver_id,
                        ports.in_port,
                        ports.out_port,
                        exc,
                    )
                    continue
                self._channels[ports.driver_id] = channel

    async def open(
        self, who: DriverIdentity, *, host: str, version: str, wire: str
    ) -> OpenedChannel:
        """The handshake: listeners up (same ports as ever) before the answer goes out.

        Only a daemon that just started performs the handshake, so leases this driver held
        before are returned to the queue: that process is gone.
        """
        d = self._deps
        driver = await d.db.run(d.ports.driver, who.driver_id)
        if driver is None or not driver.enabled:
            raise PermissionDeniedError(
                "DRIVER_DISABLED", "Driver is currently disabled by administrator."
            )
        if not driver.qpu_enabled:
            raise PermissionDeniedError(
                "QPU_DISABLED",
                "The driver's QPU is currently disabled by administrator.",
                metadata={"qpu": driver.qpu_id},
            )
        wire = wire if wire in WIRES else WIRES[0]
        async with self._lock(driver.driver_id):
            # Before the old connection is dropped, so a redialling old process cannot be
            # handed a job that this requeue would then take away again.
            requeued = await d.db.run(d.jobs.requeue_driver, driver.driver_id)
            if requeued:
                logger.info("[NNG] driver %s restarted; requeued %s", driver.driver_id, requeued)
            channel = self._channels.get(driver.driver_id)
            if channel is not None and channel.listening:
                ports = await d.db.run(
                    d.ports.allocate,
                    driver.driver_id,
                    wire,
                    self._range.start,
                    self._range.end,
                    _free,
                )
                await channel.reset(ports)
            else:
                channel = await self._start_channel(driver.driver_id, wire)
            channel.host, channel.version = host[:255], version[:100]
            channel.qpu_id = driver.qpu_id
        return OpenedChannel(
            driver.driver_id,
            driver.name,
            driver.qpu_id,
            self._host,
            channel.ports.in_port,
            channel.ports.out_port,
            self._fingerprint,
        )

    async def _start_channel(self, driver_id: str, wire: str) -> NngChannel:
        d = self._deps
        old = self._channels.pop(driver_id, None)
        if old is not None:
            await old.stop("restarting listeners")
        bad: list[int] = []
        for _ in range(_BIND_ATTEMPTS):
            try:
                ports: NngPorts = await d.db.run(
                    d.ports.allocate,
                    driver_id,
                    wire,
                    self._range.start,
                    self._range.end,
                    _free,
                    bad,
                )
            except PortRangeExhausted as exc:
                raise UnavailableError(
                    "UNAVAILABLE",
                    f"No NNG listener port is free in {self._range.start}.."
                    f"{self._range.end - 1}; widen --port-range-start/--port-range-end.",
                    metadata={"start": self._range.start, "end": self._range.end},
                ) from exc
            channel = NngChannel(ports, d, self._config, self._tls)
            try:
                channel.start()
            except pynng.NNGException as exc:
                # Taken by another process since it was allocated (or since our restart).
                logger.warning(
                    "[NNG] ports %d/%d of driver %s unusable (%s); allocating others",
                    ports.in_port,
                    ports.out_port,
                    driver_id,
                    exc,
                )
                bad += [ports.in_port, ports.out_port]
                await d.db.run(d.ports.release, driver_id)
                continue
            self._channels[driver_id] = channel
            return channel
        raise UnavailableError(
            "UNAVAILABLE", "Could not bind NNG listener ports for this driver; try again."
        )

    async def close_driver(self, driver_id: str, reason: str) -> None:
        """Closes a driver's listeners (disabled or deleted); its daemon keeps redialling."""
        async with self._lock(driver_id):
            channel = self._channels.pop(driver_id, None)
            if channel is not None:
                await channel.stop(reason)
                logger.info("[NNG] driver %s listeners closed (%s)", driver_id, reason)

    async def reload_tls(self, tls: TlsMaterial) -> None:
        """Serves a renewed certificate: listeners re-open on the same ports, drivers redial."""
        self._tls = tls
        for driver_id in list(self._channels):
            async with self._lock(driver_id):
                channel = self._channels.get(driver_id)
                if channel is None:
                    continue
                try:
                    await channel.restart_listeners(tls)
                except pynng.NNGException:
                    logger.exception("[NNG] driver %s: re-listen failed", driver_id)
                    self._channels.pop(driver_id, None)

    async def watch(self, events: EventBus) -> None:
        """Closes the listeners of drivers that were disabled or deleted (or lost their QPU)."""
        async with events.subscribe(topics=("driver", "qpu")) as queue:
            while True:
                event = await queue.get()
                if event.topic == "driver":
                    affected = [str(event.payload)]
                elif event.topic == "qpu":  # a deleted QPU takes its drivers with it
                    affected = [d for d, c in self._channels.items() if c.qpu_id == event.payload]
                else:
                    continue
                for driver_id in affected:
                    if driver_id in self._channels:
                        await self._recheck(driver_id)

    async def _recheck(self, driver_id: str) -> None:
        try:
            driver = await self._deps.db.run(self._deps.ports.driver, driver_id)
            if driver is None or not driver.enabled:
                await self.close_driver(driver_id, "deleted" if driver is None else "disabled")
        except Exception:
            logger.exception("[NNG] handling a change of driver %s failed", driver_id)

    async def stop(self) -> None:
        """Closes every listener (server shutdown)."""
        for driver_id in list(self._channels):
            channel = self._channels.pop(driver_id)
            with contextlib.suppress(Exception):
                await channel.stop("server stopping")

    def _lock(self, driver_id: str) -> asyncio.Lock:
        return self._locks.setdefault(driver_id, asyncio.Lock())


def _free(port: int) -> bool:
    """Whether nothing listens on `port` right now (a quick test bind on all interfaces)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing, never listening
        except OSError:
            return False
    return True
