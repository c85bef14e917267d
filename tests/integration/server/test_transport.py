"""gRPC health, reflection, TLS with the server's own CA, and driver authentication."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from qpi.server.security.pki import ca_fingerprint
from qpi.v1 import admin_service_pb2, admin_service_pb2_grpc
from tests.support.harness import ServerHarness
from tests.support.mini_driver import MiniDriver


def test_health_and_reflection(qpi_server: ServerHarness) -> None:
    channel = qpi_server.channel()
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="qpi.v1.JobService")).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(
        reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    )
    names = {s.name for s in reply.list_services_response.service}
    assert {"qpi.v1.JobService", "qpi.v1.DriverService", "grpc.health.v1.Health"} <= names


def test_tls_server_info_fingerprint_and_driver_stream(server_factory, bell_qasm) -> None:  # type: ignore[no-untyped-def]
    server: ServerHarness = server_factory(insecure=False)
    info = admin_service_pb2_grpc.AdminServiceStub(server.channel()).GetServerInfo(
        admin_service_pb2.GetServerInfoRequest()
    )
    assert info.grpc_tls
    assert info.grpc_port == server.grpc_port
    assert (
        info.ca_fingerprint
        == ca_fingerprint(info.ca_certificate_pem.encode())
        == server.ca_fingerprint
    )
    # Plaintext is refused on the TLS port.
    plain = grpc.insecure_channel(server.grpc_target)
    try:
        stub = admin_service_pb2_grpc.AdminServiceStub(plain)
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetServerInfo(admin_service_pb2.GetServerInfoRequest(), timeout=3)
        assert exc.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        plain.close()
    _, token = server.register_qpu("tlsq")
    creds = grpc.ssl_channel_credentials(root_certificates=info.ca_certificate_pem.encode())
    driver = MiniDriver(server.grpc_target, token, credentials=creds).start()
    server.drivers.append(driver)
    assert driver.welcomed.wait(15)
    _, user = server.create_user("alice@example.com")
    assert server.wait(user, server.submit(user, bell_qasm, qpu="tlsq").id).result_json


def test_driver_with_bad_or_disabled_token_is_refused(qpi_server: ServerHarness) -> None:
    bad = MiniDriver(qpi_server.grpc_target, "qpi_" + "1" * 64).start()
    bad._thread.join(10)
    assert bad.fatal is not None
    assert bad.fatal.code() == grpc.StatusCode.UNAUTHENTICATED


def test_qpu_reads_are_public_but_bad_credentials_still_fail(qpi_server: ServerHarness) -> None:
    from qpi.v1 import qpu_service_pb2, qpu_service_pb2_grpc

    qpi_server.register_qpu("pub")
    stub = qpu_service_pb2_grpc.QpuServiceStub(qpi_server.channel())
    listed = stub.ListQpus(qpu_service_pb2.ListQpusRequest())
    assert [q.name for q in listed.qpus] == ["pub"]
    assert stub.GetQpu(qpu_service_pb2.GetQpuRequest(id="pub")).qpu.name == "pub"
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListQpus(
            qpu_service_pb2.ListQpusRequest(), metadata=[("authorization", "Bearer nope")]
        )
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
