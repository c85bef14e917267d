"""Job states, payload validation and accounting."""

from __future__ import annotations

import math

import pytest

from qpi.server.domain.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from qpi.server.domain.jobs import (
    DEFAULT_SHOTS,
    TERMINAL_STATES,
    CircuitSpec,
    JobLimits,
    JobState,
    can_cancel,
    charge_seconds,
    ensure_can_cancel,
    ensure_can_submit,
    has_qasm_header,
    payload_size_bytes,
    validate_payload,
)

LIMITS = JobLimits(max_shots=10_000, max_circuits=3, max_payload_bytes=2_000)
BELL = "OPENQASM 3.0;\nqubit[2] q;\nh q[0];\ncx q[0], q[1];\n"


def _validate(circuits: list[CircuitSpec], **kw: object) -> object:
    args: dict[str, object] = {"shots": 0, "meas_level": None, "meas_return": "", "limits": LIMITS}
    args.update(kw)
    return validate_payload(circuits, **args)  # type: ignore[arg-type]


# --- states -------------------------------------------------------------------------


def test_states_and_cancellation() -> None:
    assert {s.value for s in JobState} == {"pending", "running", "completed", "failed", "cancelled"}
    assert {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES
    assert can_cancel(JobState.PENDING)
    assert can_cancel("running")
    for state in TERMINAL_STATES:
        assert not can_cancel(state)
        with pytest.raises(FailedPreconditionError) as info:
            ensure_can_cancel(state, "job1")
        assert info.value.reason == "JOB_ALREADY_TERMINAL"
        assert info.value.metadata == {"job_id": "job1", "state": state.value}
    ensure_can_cancel("pending", "job1")


# --- payload ------------------------------------------------------------------------


def test_valid_payload_gets_defaults() -> None:
    result = validate_payload(
        [CircuitSpec(BELL, [[0.5]], 0)], shots=0, meas_level=None, meas_return="", limits=LIMITS
    )
    assert result.shots == DEFAULT_SHOTS == 1024
    assert result.meas_level == 2
    assert result.meas_return == "single"
    assert result.circuits[0].shots == 0
    assert result.payload_bytes == len(BELL) + 8


def test_explicit_values_are_kept() -> None:
    result = validate_payload(
        [CircuitSpec(BELL, shots=7)], shots=100, meas_level=0, meas_return="avg", limits=LIMITS
    )
    assert (result.shots, result.meas_level, result.meas_return) == (100, 0, "avg")


def test_no_circuits() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([])
    assert info.value.reason == "INVALID_FIELD"
    assert info.value.field == "circuits"
    assert info.value.message == "A job needs at least one circuit."


@pytest.mark.parametrize(
    "source",
    [
        'OPENQASM 2.0;\ninclude "qelib1.inc";',
        "OPENQASM 3;",
        "  \n// a comment\n/* block\n comment */ OPENQASM 3.0 ;",
        "\ufeffOPENQASM 2.0;",
    ],
)
def test_qasm_headers_accepted(source: str) -> None:
    assert has_qasm_header(source)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("qubit q;", "header"),
        ("OPENQASM 4.0;", "header"),
        ("// OPENQASM 3.0;\nqubit q;", "header"),
        ("OPENQASM3.0;", "header"),
    ],
)
def test_invalid_qasm_names_the_circuit(source: str, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL), CircuitSpec(source)])
    err = info.value
    assert err.reason == "INVALID_QASM"
    assert err.field == "circuits[1].qasm"
    assert err.metadata == {"circuit_index": "1"}
    assert "Circuit 1" in err.message
    assert fragment in err.message
    assert err.message.endswith(".")


@pytest.mark.parametrize("shots", [-1, 10_001])
def test_job_shots_out_of_range(shots: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL)], shots=shots)
    assert info.value.reason == "INVALID_FIELD"
    assert info.value.field == "shots"
    assert "10000" in info.value.message
    assert info.value.metadata["max_shots"] == "10000"
    assert info.value.metadata["value"] == str(shots)


@pytest.mark.parametrize("shots", [-5, 10_001])
def test_circuit_shots_out_of_range(shots: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL), CircuitSpec(BELL, shots=shots)])
    assert info.value.field == "circuits[1].shots"
    assert "10000" in info.value.message


def test_shots_at_the_limit_are_fine() -> None:
    assert _validate([CircuitSpec(BELL, shots=10_000)], shots=10_000)


@pytest.mark.parametrize("level", [-1, 3])
def test_meas_level(level: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL)], meas_level=level)
    assert info.value.field == "meas_level"


def test_meas_return() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL)], meas_return="average")
    assert info.value.field == "meas_return"
    assert info.value.metadata == {"value": "average"}


def test_too_many_circuits() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL)] * 4)
    assert info.value.reason == "INVALID_FIELD"
    assert info.value.field == "circuits"
    assert info.value.metadata == {"count": "4", "max_circuits": "3"}


def test_payload_too_large() -> None:
    big = CircuitSpec(BELL + "// " + "x" * 2_000)
    with pytest.raises(ResourceExhaustedError) as info:
        _validate([big])
    err = info.value
    assert err.reason == "PAYLOAD_TOO_LARGE"
    size = payload_size_bytes([big])
    assert err.metadata == {"size_bytes": str(size), "max_payload_bytes": "2000"}
    assert str(size) in err.message
    assert "2000" in err.message


def test_payload_size_override() -> None:
    with pytest.raises(ResourceExhaustedError):
        _validate([CircuitSpec(BELL)], payload_bytes=2_001)
    assert _validate([CircuitSpec(BELL)], payload_bytes=2_000)


def test_payload_size_counts_parameters_and_utf8() -> None:
    assert payload_size_bytes([CircuitSpec("é", [[1.0, 2.0], [3.0]])]) == 2 + 3 * 8


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_parameter_values_must_be_finite(bad: float) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _validate([CircuitSpec(BELL, [[0.1], [0.2, bad]])])
    err = info.value
    assert err.reason == "INVALID_FIELD"
    assert err.field == "circuits[0].parameter_values[1]"
    assert err.metadata["parameter_set_index"] == "1"


# --- accounting ---------------------------------------------------------------------


def test_charge_deducts_execution_time() -> None:
    assert charge_seconds(2.5, 10.0, False) == (2.5, 7.5)


def test_charge_clamps_at_zero_and_records_actual_charge() -> None:
    assert charge_seconds(12.0, 10.0, False) == (10.0, 0.0)
    assert charge_seconds(1.0, 0.0, False) == (0.0, 0.0)


def test_negative_or_nan_execution_is_free() -> None:
    assert charge_seconds(-3.0, 10.0, False) == (0.0, 10.0)
    assert charge_seconds(math.nan, 10.0, False) == (0.0, 10.0)


def test_superusers_are_not_charged() -> None:
    assert charge_seconds(5.0, 0.0, True) == (0.0, 0.0)
    assert charge_seconds(5.0, 3.0, True) == (0.0, 3.0)


def test_ensure_can_submit() -> None:
    ensure_can_submit(0.1, False)
    ensure_can_submit(0.0, True)
    for balance in (0.0, -1.0):
        with pytest.raises(ResourceExhaustedError) as info:
            ensure_can_submit(balance, False)
        assert info.value.reason == "INSUFFICIENT_QPU_SECONDS"
        assert info.value.message == "Insufficient QPU seconds balance."
