"""One NNG driver's two TLS listeners (pynng), with pipe events delivered to asyncio.

The server's PUSH socket listens on the "in" port (jobs to the driver), its PULL socket on
the "out" port (results and telemetry from the driver). NNG calls pipe callbacks on its
own threads; they only hand the event over to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pynng

logger = logging.getLogger(__name__)

PipeEvent = tuple[str, str, int]
"""(socket role "in"/"out", "attach"/"detach", pipe id)."""


@dataclass(frozen=True)
class TlsMaterial:
    """What the listeners present: the leaf certificate chain and its key (PEM)."""

    cert_chain_pem: str
    key_pem: str


def server_tls(material: TlsMaterial) -> pynng.TLSConfig:
    """Server-mode TLS (≥ 1.2, no client certificates: drivers pin the CA instead)."""
    return pynng.TLSConfig(
        pynng.TLSConfig.MODE_SERVER,
        own_cert_string=material.cert_chain_pem,
        own_key_string=material.key_pem,
        auth_mode=pynng.TLSConfig.AUTH_MODE_NONE,
    )


class ListenerPair:
    """PUSH on `in_port`, PULL on `out_port`, both `tls+tcp` on `host`."""

    def __init__(
        self,
        host: str,
        in_port: int,
        out_port: int,
        tls: TlsMaterial,
        max_message_bytes: int,
        on_pipe: Callable[[PipeEvent], None],
    ) -> None:
        self.in_port = in_port
        self.out_port = out_port
        self._loop = asyncio.get_running_loop()
        self._on_pipe = on_pipe
        config = server_tls(tls)
        self.push = pynng.Push0(tls_config=config, send_timeout=5000)
        self.pull = pynng.Pull0(tls_config=config, recv_max_size=max_message_bytes)
        self._pipes: dict[int, pynng.Pipe] = {}
        for role, sock in (("in", self.push), ("out", self.pull)):
            # The protocol has no heartbeats: let TCP notice hosts that vanished silently.
            sock.tcp_keepalive = True
            sock.add_post_pipe_connect_cb(self._callback(role, "attach"))
            sock.add_post_pipe_remove_cb(self._callback(role, "detach"))
        try:
            self.push.listen(f"tls+tcp://{_url_host(host)}:{in_port}")
            self.pull.listen(f"tls+tcp://{_url_host(host)}:{out_port}")
        except pynng.NNGException:
            self.close()
            raise

    def _callback(self, role: str, what: str) -> Callable[[pynng.Pipe], None]:
        def handle(pipe: pynng.Pipe) -> None:
            if what == "attach":
                self._pipes[pipe.id] = pipe
            else:
                self._pipes.pop(pipe.id, None)
            # Runs on an NNG thread; the loop may already be closed at shutdown.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_pipe, (role, what, pipe.id))

        return handle

    def close_pipe(self, pipe_id: int) -> None:
        """Drops one connection (the driver's dialer will redial)."""
        pipe = self._pipes.get(pipe_id)
        if pipe is not None:
            with contextlib.suppress(pynng.NNGException):
                pipe.close()

    async def send(self, data: bytes) -> None:
        """Queues a message to the attached driver; raises on timeout or closure."""
        await self.push.asend(data)

    async def receive(self) -> bytes:
        """The next message from the driver; raises pynng.Closed once closed."""
        return bytes(await self.pull.arecv())

    def close(self) -> None:
        """Closes both sockets and their connections."""
        for sock in (self.push, self.pull):
            with contextlib.suppress(pynng.NNGException):
                sock.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
