"""NngCompatService and the NNG listeners, in process: errors, ports, certificate renewal."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2

from qpi.server.app import _nng_tls
from qpi.v1 import nng_service_pb2 as pb
from qpi.v1 import nng_service_pb2_grpc, qpu_pb2, qpu_service_pb2, qpu_service_pb2_grpc
from tests.e2e.nng.peers import free_port_block
from tests.support.harness import ServerHarness, drop_postgres, make_settings
from tests.support.processes import wait_until


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ServerHarness]:
    start = free_port_block(6)
    settings = make_settings(tmp_path, port_range_start=start, port_range_end=start + 6)
    h = ServerHarness(settings).start()
    try:
        yield h
    finally:
        h.stop()
        if settings.database_url:
            drop_postgres(settings.database_url)


def _open(h: ServerHarness, token: str) -> pb.OpenNngChannelResponse:
    stub = nng_service_pb2_grpc.NngCompatServiceStub(h.channel())
    return stub.OpenNngChannel(
        pb.OpenNngChannelRequest(host="lab-node", version="0.4.2"), metadata=h.auth(token)
    )


def _presented_leaf(port: int, ca_pem: bytes) -> bytes:
    """The certificate a TLS client pinned to our CA sees on an NNG port (as DER)."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def test_handshake_rpc_errors_and_ports(harness: ServerHarness) -> None:
    h = harness
    with pytest.raises(grpc.RpcError) as missing:
        _open(h, "qpi_" + "1" * 64)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    qpu_id, token = h.register_qpu("nng-rpc")
    opened = _open(h, token)
    assert opened.nng_host == "127.0.0.1"
    assert opened.qpu_id == qpu_id
    assert opened.ca_fingerprint == h.ca_fingerprint
    start = h.settings.port_range_start
    assert {opened.nng_in_port, opened.nng_out_port} == {start, start + 1}
    assert _open(h, token).nng_in_port == opened.nng_in_port  # same ports every time

    qpus = qpu_service_pb2_grpc.QpuServiceStub(h.channel())
    driver = qpus.ListDrivers(
        qpu_service_pb2.ListDriversRequest(qpu_id=qpu_id), metadata=h.auth(h.admin_token)
    ).drivers[0]
    qpus.UpdateDriver(
        qpu_service_pb2.UpdateDriverRequest(
            driver=qpu_pb2.Driver(id=driver.id, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=h.auth(h.admin_token),
    )
    with pytest.raises(grpc.RpcError) as disabled:
        _open(h, token)
    assert disabled.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_renewed_certificate_is_served_on_the_same_ports(harness: ServerHarness) -> None:
    h = harness
    _, token = h.register_qpu("nng-renew")
    opened = _open(h, token)
    server = h.server
    assert server.pki is not None
    assert server.nng is not None
    old_leaf = server.pki.cert_pem
    assert _presented_leaf(opened.nng_in_port, h.ca_pem) == _der(old_leaf)

    # What the renewal loop does once the leaf nears expiry: a new leaf, same CA.
    Path(h.settings.resolve(h.settings.tls_cert_file)).unlink()
    fresh = server._load_pki()
    assert fresh.cert_pem != old_leaf
    assert fresh.fingerprint == server.pki.fingerprint
    asyncio.run_coroutine_threadsafe(server.nng.reload_tls(_nng_tls(fresh)), h._loop).result(30)
    for port in (opened.nng_in_port, opened.nng_out_port):
        assert _presented_leaf(port, h.ca_pem) == _der(fresh.cert_pem)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_deleting_the_qpu_closes_its_drivers_listeners(harness: ServerHarness) -> None:
    h = harness
    qpu_id, token = h.register_qpu("nng-deleted")
    opened = _open(h, token)
    assert _listening(opened.nng_in_port)
    qpus = qpu_service_pb2_grpc.QpuServiceStub(h.channel())
    qpus.DeleteQpu(qpu_service_pb2.DeleteQpuRequest(id=qpu_id), metadata=h.auth(h.admin_token))
    wait_until(
        lambda: not _listening(opened.nng_in_port) and not _listening(opened.nng_out_port),
        15,
        "listeners closed",
    )
    with pytest.raises(grpc.RpcError) as gone:
        _open(h, token)
    assert gone.value.code() == grpc.StatusCode.UNAUTHENTICATED
