"""An in-test TCP proxy that can cut the path silently, like a dead NAT entry or cable.

`blackhole()` stops forwarding in both directions without closing any socket: bytes are
read and dropped, so neither peer gets a FIN, an RST or a full send buffer, and new
connections are accepted but go nowhere (a TLS handshake through it hangs). `restore()`
forwards again for new connections; connections that lived through the cut are reset,
as the far side would do for a connection it has long forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any

from tests.support.processes import free_port


class _Link:
    """One proxied connection: client side and upstream side."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.cut = False

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                # SO_LINGER 0 would reset; closing is enough for the peers to reconnect.
                writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target_host:target_port` from a background loop."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._blackholed = False
        self._links: set[_Link] = set()
        self._pending: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        """`host:port` clients should connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        """Starts listening."""
        self._thread.start()
        self._call(self._listen())
        return self

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._blackholed:
            # Accepted, never answered: what a client sees when the path drops its packets.
            self._pending.add(writer)
            await self._drain(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, link), self._pipe(up_reader, writer, link)
            )
        finally:
            self._links.discard(link)
            link.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if link.cut:
                    continue  # silently dropped
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            if not link.cut:
                writer.write_eof()

    @staticmethod
    async def _drain(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass

    def blackhole(self) -> None:
        """Drops every byte from now on, on live and new connections alike."""

        async def cut() -> None:
            self._blackholed = True
            for link in self._links:
                link.cut = True

        self._call(cut())

    def restore(self) -> None:
        """Forwards new connections again; resets the ones that lived through the cut."""

        async def heal() -> None:
            self._blackholed = False
            for link in [link for link in self._links if link.cut]:
                link.close()
            for writer in self._pending:
                writer.transport.abort()
            self._pending.clear()

        self._call(heal())

    def connections(self) -> int:
        """Connections currently forwarded (not cut)."""

        async def count() -> int:
            return sum(1 for link in self._links if not link.cut)

        return int(self._call(count()))

    def stop(self) -> None:
        """Closes everything and stops the loop."""

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                link.close()
            for writer in self._pending:
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
