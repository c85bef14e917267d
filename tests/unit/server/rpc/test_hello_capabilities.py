"""A driver hello's capabilities are bounded and cleaned before anything is stored."""

from __future__ import annotations

import math

import pytest

from qpi.driver.capabilities import basic_capabilities, hello_fields, instruction
from qpi.server.domain.errors import FailedPreconditionError
from qpi.server.domain.models import InstructionProperties, QpuCapabilities
from qpi.server.rpc import convert
from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import qpu_pb2


def hello(**capabilities: object) -> pb.DriverHello:
    caps = basic_capabilities(2, ["x", "cz", "measure"], [2, 1], [(0, 1)], [])
    caps.update(capabilities)
    return pb.DriverHello(name="d", **hello_fields(caps))


def test_driver_capabilities_round_trip_into_the_domain() -> None:
    message = hello(
        instructions=[instruction("x", [0], 2e-8, 1e-3), instruction("cz", [0, 1], None, 0.02)]
    )
    assert convert.hello_coupling(message.coupling_map) == ((0, 1),)
    assert convert.hello_capabilities(message.capabilities) == QpuCapabilities(
        meas_levels=(1, 2),
        instructions=(
            InstructionProperties("x", (0,), 2e-8, 1e-3),
            InstructionProperties("cz", (0, 1), None, 0.02),
        ),
    )
    served = convert.capabilities(convert.hello_capabilities(message.capabilities))
    assert served == message.capabilities


def test_unknown_levels_and_unusable_numbers_are_dropped() -> None:
    caps = qpu_pb2.QpuCapabilities(meas_levels=[7, 2, 2, -1])
    caps.instructions.add(name="x", qubits=[0], duration_seconds=math.nan, error=-1.0)
    cleaned = convert.hello_capabilities(caps)
    assert cleaned.meas_levels == (2,)
    assert cleaned.instructions == (InstructionProperties("x", (0,), None, None),)


def test_oversized_hello_is_a_protocol_violation() -> None:
    caps = qpu_pb2.QpuCapabilities()
    for _ in range(convert.MAX_HELLO_INSTRUCTIONS + 1):
        caps.instructions.add(name="x", qubits=[0])
    with pytest.raises(FailedPreconditionError) as raised:
        convert.hello_capabilities(caps)
    assert raised.value.reason == "PROTOCOL_VIOLATION"
    edges = [qpu_pb2.CouplingEdge(source=0, target=1)] * (convert.MAX_HELLO_EDGES + 1)
    with pytest.raises(FailedPreconditionError):
        convert.hello_coupling(edges)


@pytest.mark.parametrize("qubits", [[-1], [1 << 30], [0, 1, 2, 3]])
def test_bad_qubits_are_refused(qubits: list[int]) -> None:
    caps = qpu_pb2.QpuCapabilities()
    caps.instructions.add(name="ccx", qubits=qubits)
    with pytest.raises(FailedPreconditionError):
        convert.hello_capabilities(caps)
    if len(qubits) == 1:
        with pytest.raises(FailedPreconditionError):
            convert.hello_coupling([qpu_pb2.CouplingEdge(source=0, target=qubits[0])])
