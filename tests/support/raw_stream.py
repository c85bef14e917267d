"""A hand-driven DriverService.Connect stream, for tests that script a driver message by message."""

from __future__ import annotations

import queue
from collections.abc import Iterator

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc
from tests.support.harness import ServerHarness


class RawStream:
    """A hand-driven Connect stream."""

    def __init__(
        self,
        server: ServerHarness,
        token: str,
        held: list[tuple[str, int]],
        *,
        capacity: int = 1,
        prefetch: int = 0,
    ) -> None:
        self.out: queue.Queue[pb.ConnectRequest | None] = queue.Queue()
        stub = driver_service_pb2_grpc.DriverServiceStub(server.channel())
        hello = pb.DriverHello(
            name="raw",
            capacity=capacity,
            prefetch=prefetch,
            executes_jobs=True,
            held_jobs=[pb.HeldJob(job_id=j, attempt=a) for j, a in held],
        )
        self.out.put(pb.ConnectRequest(hello=hello))
        self.call = stub.Connect(self._requests(), metadata=server.auth(token))
        self.incoming = iter(self.call)

    def _requests(self) -> Iterator[pb.ConnectRequest]:
        while (item := self.out.get()) is not None:
            yield item

    def next(self, kind: str) -> pb.ConnectResponse:
        for message in self.incoming:
            if message.WhichOneof("message") == kind:
                return message
        raise AssertionError(f"stream ended before {kind}")

    def send(self, message: pb.ConnectRequest) -> None:
        """Queues a driver message."""
        self.out.put(message)

    def close(self) -> None:
        self.out.put(None)
        self.call.cancel()
