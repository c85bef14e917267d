"""A test double of the server side of DriverService (plus the HTTP bootstrap routes).

It runs on a real grpc.aio port and records everything the driver sends, so tests can
drive the daemon end to end without the real server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc as pb_grpc
from qpi.v1 import job_pb2

TOKEN = "test-token"

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def bell_payload(shots: int = 256, qasm: str = BELL, **kwargs: Any) -> job_pb2.JobPayload:
    return job_pb2.JobPayload(circuits=[job_pb2.Circuit(qasm=qasm)], shots=shots, **kwargs)


@dataclass
class Received:
    at: float
    session: int
    kind: str
    message: Any


@dataclass
class FakeDriverServer(pb_grpc.DriverServiceServicer):
    """Records driver messages; tests push assignments/cancellations through `send`."""

    heartbeat_interval: float = 0.2
    auto_ack: bool = True
    token: str = TOKEN
    received: list[Received] = field(default_factory=list)
    results: dict[str, pb.JobResult] = field(default_factory=dict)
    leases: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    hellos: list[pb.DriverHello] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._outbox: asyncio.Queue[pb.ConnectResponse | None] | None = None
        self._changed = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    # ------------------------------------------------------------------ server control
    async def start(self, port: int = 0) -> int:
        self._server = grpc.aio.server()
        pb_grpc.add_DriverServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        await self._server.start()
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._outbox = None

    # ------------------------------------------------------------------ test API
    @property
    def connected(self) -> bool:
        return self._outbox is not None

    def send(self, message: pb.ConnectResponse) -> None:
        assert self._outbox is not None, "no driver connected"
        self._outbox.put_nowait(message)

    def assign(self, job_id: str, payload: job_pb2.JobPayload, attempt: int = 1) -> None:
        self.leases[job_id] = attempt
        self.sent_at[job_id] = time.perf_counter()
        assignment = pb.JobAssignment(job_id=job_id, attempt=attempt, payload=payload)
        self.send(pb.ConnectResponse(job_assignment=assignment))

    def cancel(self, job_id: str) -> None:
        attempt = self.leases.pop(job_id, 0)
        cancellation = pb.JobCancellation(job_id=job_id, attempt=attempt, reason="test")
        self.send(pb.ConnectResponse(job_cancellation=cancellation))

    def ack(self, job_id: str, attempt: int) -> None:
        ack = pb.ResultAck(job_id=job_id, attempt=attempt, accepted=True)
        self.send(pb.ConnectResponse(result_ack=ack))

    def kinds(self, kind: str) -> list[Any]:
        return [r.message for r in self.received if r.kind == kind]

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met; received kinds: {self._summary()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))
            except TimeoutError:
                pass

    def _summary(self) -> list[str]:
        return [r.kind for r in self.received][-30:]

    def _record(self, kind: str, message: Any) -> None:
        self.received.append(Received(time.perf_counter(), self.sessions, kind, message))
        self._changed.set()

    # ------------------------------------------------------------------ RPC
    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("authorization") != f"Bearer {self.token}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid access token")
        first = await context.read()
        if first is grpc.aio.EOF or not first.HasField("hello"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello expected")
        self.sessions += 1
        self.hellos.append(first.hello)
        self._record("hello", first.hello)
        resumed = [h for h in first.hello.held_jobs if self.leases.get(h.job_id) == h.attempt]
        welcome = pb.ServerWelcome(
            driver_id="drv1",
            heartbeat_interval=Duration(
                seconds=int(self.heartbeat_interval),
                nanos=int(self.heartbeat_interval % 1 * 1e9),
            ),
            heartbeat_timeout=Duration(seconds=5),
            server_version="fake",
            resumed_jobs=resumed,
        )
        await context.write(pb.ConnectResponse(welcome=welcome))
        outbox: asyncio.Queue[pb.ConnectResponse | None] = asyncio.Queue()
        self._outbox = outbox
        reader = asyncio.create_task(self._read_loop(context, outbox))
        try:
            while True:
                message = await outbox.get()
                if message is None:
                    return
                await context.write(message)
        finally:
            reader.cancel()
            if self._outbox is outbox:
                self._outbox = None
            self._record("disconnect", None)

    async def _read_loop(self, context: Any, outbox: asyncio.Queue[Any]) -> None:
        try:
            while True:
                request = await context.read()
                if request is grpc.aio.EOF:
                    break
                kind = request.WhichOneof("message")
                message = getattr(request, kind)
                self._record(kind, message)
                if kind == "job_result":
                    current = self.leases.get(message.job_id) == message.attempt
                    if current:
                        self.results[message.job_id] = message
                    if self.auto_ack:
                        # Like the real server, a lease ends only once its result is stored.
                        if current:
                            self.leases.pop(message.job_id, None)
                        ack = pb.ResultAck(
                            job_id=message.job_id, attempt=message.attempt, accepted=current
                        )
                        outbox.put_nowait(pb.ConnectResponse(result_ack=ack))
                elif kind == "job_release":
                    self.leases.pop(message.job_id, None)
        finally:
            outbox.put_nowait(None)


class BootstrapHttp:
    """Serves /api/pub/server-info and /api/pub/root-ca.pem from a thread."""

    def __init__(self, grpc_port: int, ca_pem: bytes | None = None, fingerprint: str = "") -> None:
        info = {
            "version": "fake",
            "grpc_port": grpc_port,
            "grpc_tls": ca_pem is not None,
            "ca_fingerprint": fingerprint,
        }
        body = json.dumps(info).encode()
        pem = ca_pem or b""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/api/pub/server-info":
                    data, ctype = body, "application/json"
                elif self.path == "/api/pub/root-ca.pem" and pem:
                    data, ctype = pem, "application/x-pem-file"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
