"""The QASM pre-scan: includes, widths, expanded operations and numbers, before parsing."""

from __future__ import annotations

import pytest

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.qasm_budget import (
    LIGHT_WORK,
    QasmBudget,
    check_includes,
    quick_estimate,
    scan_circuit,
    scan_job,
    strip_line_comments,
)

BUDGET = QasmBudget(max_width=100, max_operations=1_000)
Q2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
Q3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def _refusal(source: str, budget: QasmBudget = BUDGET) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as caught:
        scan_circuit(source, 3, budget)
    return caught.value


def test_bell_is_counted_exactly() -> None:
    bell = Q2 + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
    cost = scan_circuit(bell, 0, BUDGET)
    assert (cost.version, cost.qubits, cost.clbits, cost.operations) == ("2", 2, 2, 4)


def test_qasm3_declarations_loops_and_physical_qubits() -> None:
    source = Q3 + "qubit[3] q;\nbit[3] c;\nfor int i in [0:9] { x q[1]; }\nc = measure q;\n"
    assert scan_circuit(source, 0, BUDGET).operations == 10 + 3
    assert scan_circuit(Q3 + "h $7;\n", 0, BUDGET).qubits == 8
    sliced = Q3 + "qubit[50] q;\nh q[0:9];\n"
    assert scan_circuit(sliced, 0, BUDGET).operations == 10


@pytest.mark.parametrize(
    "path", ["/etc/shadow", "../x.inc", "qelib2.inc", "stdgates.inc.bak", "/x//y"]
)
def test_only_standard_includes(path: str) -> None:
    err = _refusal(f'OPENQASM 2.0;\ninclude "{path}";\nqreg q[1];\n')
    assert err.reason == "QASM_INCLUDE_FORBIDDEN"
    assert err.metadata["circuit_index"] == "3"
    assert err.field == "circuits[3].qasm"


def test_includes_cannot_hide() -> None:
    # A // inside a string does not start a comment, so what follows is still checked.
    with pytest.raises(InvalidArgumentError):
        check_includes('defcalgrammar "a//b"; include "/etc/passwd";', 0)
    with pytest.raises(InvalidArgumentError):
        check_includes('/* */ include "/etc/passwd";', 0)
    check_includes('include "qelib1.inc"; // include "/etc/passwd"', 0)
    assert strip_line_comments('x; // c\n"//" y; // z') == 'x; \n"//" y; '


def test_width_and_clbits_are_bounded() -> None:
    err = _refusal(Q2 + "qreg q[101];\n")
    assert err.reason == "CIRCUIT_TOO_LARGE"
    assert err.metadata["limit"] == "max_circuit_width"
    assert "--max-circuit-width" in err.message
    assert _refusal(Q2 + "qreg q[1];\ncreg c[500];\n").metadata["value"] == "500"


def test_broadcasts_and_nested_gates_are_multiplied_out() -> None:
    err = _refusal(Q2 + "qreg q[100];\n" + "h q;\n" * 11)
    assert err.metadata["limit"] == "max_operations"
    assert "--max-operations" in err.message
    nested = "gate g0 a { h a; h a; }\n" + "".join(
        f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}\n" for i in range(1, 200)
    )
    assert _refusal(Q2 + nested + "qreg q[1];\ng199 q[0];\n").metadata["limit"] == (
        "max_operations"
    )
    assert scan_circuit(Q2 + nested + "qreg q[1];\n", 0, BUDGET).operations == 0


def test_operations_count_across_the_whole_job() -> None:
    circuit = Q2 + "qreg q[100];\n" + "h q;\n" * 4  # 400 each
    with pytest.raises(InvalidArgumentError) as caught:
        list(scan_job([circuit] * 3, BUDGET))
    assert caught.value.metadata["circuit_index"] == "2"
    assert [c.operations for c in scan_job([circuit] * 2, BUDGET)] == [400, 400]


def test_sizes_must_be_literals_and_numbers_finite() -> None:
    assert "integer literals" in _refusal(Q3 + "qubit[n] q;\n").message
    assert _refusal(Q2 + "qreg q[1];\nrz(1e999) q[0];\n").reason == "INVALID_QASM"
    assert "nests" in _refusal(Q3 + "if (c) {" * 40 + "}" * 40).message


def test_quick_estimate_separates_light_from_heavy() -> None:
    bell = Q2 + "qreg q[2];\nh q[0];\n"
    assert quick_estimate([bell] * 10) <= LIGHT_WORK
    assert quick_estimate([Q2 + "qreg q[1000];\n" + "h q;\n" * 500]) > LIGHT_WORK
    assert quick_estimate([Q3 + "qubit[5] q;\n" + "h q[0];\n" * 2000]) > LIGHT_WORK
