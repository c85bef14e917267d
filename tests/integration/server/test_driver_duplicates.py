"""One driver token, one stream: the hub refuses a second stream while the first answers,
replaces a silent one, and tells a driver it disabled why its stream ended."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import qpu_pb2, qpu_service_pb2, qpu_service_pb2_grpc
from tests.support.harness import ServerHarness
from tests.support.raw_stream import RawStream


def _details(error: grpc.RpcError) -> tuple[str, float | None]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    reason, retry = "", None
    for detail in status.details:
        info, delay = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(delay):
            retry = delay.retry_delay.ToNanoseconds() / 1e9
    return reason, retry


def test_a_second_stream_is_refused_while_the_first_answers(qpi_server: ServerHarness) -> None:
    _, token = qpi_server.register_qpu("dup")
    first = RawStream(qpi_server, token, [])
    first.next("welcome")
    second = RawStream(qpi_server, token, [])
    first.next("ping")  # the hub asks the first stream whether it is alive
    first.out.put(pb.ConnectRequest(heartbeat=pb.DriverHeartbeat()))
    with pytest.raises(grpc.RpcError) as refused:
        second.next("welcome")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, retry = _details(refused.value)
    assert reason == "DRIVER_ALREADY_CONNECTED"
    assert retry is not None
    assert retry > 0
    # The first stream was not disturbed: it still gets pings answered and stays open.
    first.out.put(pb.ConnectRequest(heartbeat=pb.DriverHeartbeat()))
    third = RawStream(qpi_server, token, [])
    first.next("ping")
    first.out.put(pb.ConnectRequest(heartbeat=pb.DriverHeartbeat()))
    with pytest.raises(grpc.RpcError):
        third.next("welcome")
    first.close()


def test_a_silent_first_stream_is_replaced(qpi_server: ServerHarness) -> None:
    _, token = qpi_server.register_qpu("silent")
    first = RawStream(qpi_server, token, [])
    first.next("welcome")
    second = RawStream(qpi_server, token, [])  # the first never answers the ping
    assert second.next("welcome").welcome.driver_id
    second.close()
    first.close()


def test_disabling_a_connected_driver_ends_its_stream_with_driver_disabled(
    qpi_server: ServerHarness,
) -> None:
    qpu_id, token = qpi_server.register_qpu("toggled")
    stream = RawStream(qpi_server, token, [])
    stream.next("welcome")
    stub = qpu_service_pb2_grpc.QpuServiceStub(qpi_server.channel())
    admin = qpi_server.auth(qpi_server.admin_token)
    (driver,) = stub.ListDrivers(
        qpu_service_pb2.ListDriversRequest(qpu_id=qpu_id), metadata=admin
    ).drivers
    stub.UpdateDriver(
        qpu_service_pb2.UpdateDriverRequest(
            driver=qpu_pb2.Driver(id=driver.id, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=admin,
    )
    with pytest.raises(grpc.RpcError) as ended:
        stream.next("welcome")  # nothing else comes: the stream ends with the reason
    reason, retry = _details(ended.value)
    assert reason == "DRIVER_DISABLED"
    assert retry is not None
    stream.close()
