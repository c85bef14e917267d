"""A device driver's hello (coupling map, durations, meas levels) shapes the SDK's Target.

The hello is the qblox executor's own announcement for the shipped dummy device config
(3 qubits, q0-q1 and q1-q2 coupled), built without any instrument and sent over a real
Connect stream to the in-process server; the SDK then reads the QPU back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from qiskit import QuantumCircuit, transpile

from qpi.driver.capabilities import hello_fields
from qpi.driver.executors._quantify_device import load_mapping
from qpi.driver.executors.qblox import EXAMPLE_DEVICE_CONFIG, QbloxExecutor
from qpi.sdk import FailedPreconditionError, QPIClient
from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc
from tests.integration.sdk.conftest import Account

COUPLED = {(0, 1), (1, 0), (1, 2), (2, 1)}


def qblox_capabilities() -> dict[str, Any]:
    executor = QbloxExecutor.__new__(QbloxExecutor)
    executor.device_config = load_mapping(EXAMPLE_DEVICE_CONFIG)
    executor.num_qubits = 3
    return executor.capabilities()


class HelloStream:
    """One Connect stream that sends a hello, then heartbeats until closed."""

    def __init__(self, server: Any, token: str, hello: pb.DriverHello) -> None:
        self._stop = threading.Event()
        stub = driver_service_pb2_grpc.DriverServiceStub(server.channel())
        self.call = stub.Connect(self._requests(hello), metadata=server.auth(token))

    def _requests(self, hello: pb.DriverHello) -> Iterator[pb.ConnectRequest]:
        yield pb.ConnectRequest(hello=hello)
        while not self._stop.wait(0.5):
            yield pb.ConnectRequest(heartbeat=pb.DriverHeartbeat())

    def welcome(self) -> pb.ServerWelcome:
        first = next(iter(self.call))
        assert first.WhichOneof("message") == "welcome"
        welcome: pb.ServerWelcome = first.welcome
        return welcome

    def close(self) -> None:
        self._stop.set()
        self.call.cancel()


@pytest.fixture
def qblox_qpu(qpi_server: Any) -> Iterator[tuple[str, pb.ServerWelcome]]:
    name = f"qblox-{uuid.uuid4().hex[:6]}"
    _, token = qpi_server.register_qpu(name, 8)  # the admin guessed 8 qubits
    hello = pb.DriverHello(
        name="qblox-dummy", executor="qblox", executes_jobs=True, capacity=1,
        **hello_fields(qblox_capabilities()),
    )  # fmt: skip
    stream = HelloStream(qpi_server, token, hello)
    try:
        yield name, stream.welcome()
    finally:
        stream.close()


def test_welcome_and_qpu_carry_the_device(
    qblox_qpu: tuple[str, pb.ServerWelcome], user: Account
) -> None:
    name, welcome = qblox_qpu
    assert welcome.qpu.num_qubits == 3  # lowered to what the device has
    assert {(e.source, e.target) for e in welcome.qpu.coupling_map} == COUPLED
    assert list(welcome.qpu.capabilities.meas_levels) == [1, 2]
    qpu = user.client.get_qpu(name)
    assert qpu.num_qubits == 3
    assert set(qpu.coupling_map) == COUPLED
    durations = {(i.name, i.qubits): i.duration for i in qpu.capabilities.instructions}
    assert durations[("cz", (1, 2))] == 20e-9
    assert durations[("x", (0,))] == 20e-9


def test_transpile_for_the_backend_respects_the_coupling(
    qblox_qpu: tuple[str, pb.ServerWelcome], user: Account
) -> None:
    backend = user.client.get_backend(qblox_qpu[0])
    assert backend.target.build_coupling_map() is not None
    assert set(backend.target.build_coupling_map().get_edges()) == COUPLED
    ghz = QuantumCircuit(3, 3)
    ghz.h(0)
    ghz.cx(0, 1)
    ghz.cx(0, 2)
    ghz.cx(2, 0)
    ghz.measure(range(3), range(3))
    for level in (0, 1, 2, 3):
        compiled = transpile(ghz, backend, optimization_level=level, seed_transpiler=11)
        pairs = {
            (compiled.find_bit(i.qubits[0]).index, compiled.find_bit(i.qubits[1]).index)
            for i in compiled.data
            if i.operation.num_qubits == 2 and i.operation.name != "barrier"
        }
        assert pairs, level
        assert pairs <= COUPLED, (level, pairs)


def test_unannounced_meas_level_is_refused(
    qblox_qpu: tuple[str, pb.ServerWelcome], user: Account
) -> None:
    with pytest.raises(FailedPreconditionError) as raised:
        user.client.submit_job(
            ["OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];\n"],
            meas_level=0,
            qpu_target=qblox_qpu[0],
        )
    assert raised.value.reason == "MEAS_LEVEL_UNSUPPORTED"
    assert "(qblox executor)" in raised.value.message


def test_oversized_hello_is_refused(qpi_server: Any, admin: QPIClient) -> None:
    _, token = qpi_server.register_qpu(f"big-{uuid.uuid4().hex[:6]}", 2)
    edges = [[0, 1]] * 10_001
    caps = {"num_qubits": 2, "coupling_map": edges}
    stream = HelloStream(qpi_server, token, pb.DriverHello(name="big", **hello_fields(caps)))
    try:
        with pytest.raises(grpc.RpcError) as raised:
            stream.welcome()
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "10001 coupling edges" in str(raised.value.details())
    finally:
        stream.close()
