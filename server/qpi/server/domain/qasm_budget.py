"""A cheap pre-scan of OpenQASM text: what parsing it would cost, before any parser runs.

A few kilobytes of QASM can describe gigabytes of circuit (``qreg q[10000];`` and a
thousand ``h q;`` lines broadcast to ten million gate instances; nested ``gate``
definitions double at each level), and ``include`` makes a parser read files. This
module reads the text once, in time linear in its size, and refuses before parsing:

* any ``include`` other than the standard ``qelib1.inc`` / ``stdgates.inc``;
* registers wider than :attr:`QasmBudget.max_width` qubits or clbits;
* more expanded operations (register broadcasts, custom gates and literal ``for``
  ranges multiplied out) than :attr:`QasmBudget.max_operations` for the whole job;
* numeric literals that are not finite (``1e999``).

It is an estimate of cost, not a parser: text it cannot size safely (a register size
that is not an integer literal, blocks nested absurdly deep) is refused, and anything it
lets through still goes to the real parser, with its own time and memory budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qpi.server.domain.errors import InvalidArgumentError

STANDARD_INCLUDES: frozenset[str] = frozenset({"qelib1.inc", "stdgates.inc"})
"""The only files a circuit may include; parsers serve them from memory."""

MAX_NESTING = 16
"""Deepest block nesting (gate bodies, loops, branches) the pre-scan follows."""

_VERSION = re.compile(r"OPENQASM\s+([23])")
_INCLUDE_WORD = re.compile(r"\binclude\b")
_INCLUDE_STATEMENT = re.compile(r'include\s*"([^"\n]*)"\s*;')
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_DELIMITERS = re.compile(r"[;{}]")
_NUMBER = re.compile(r"(?<![\w.$])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# `qreg q[5]` / `creg c[5]` (both versions) and `qubit[5] q` / `bit[5] c` / `qubit q`.
_OLD_REGISTER = re.compile(rf"^(qreg|creg)\s+({_IDENT})\s*\[\s*([^\]]*)\]\s*$")
_NEW_REGISTER = re.compile(rf"^(qubit|bit)\s*(?:\[\s*([^\]]*)\])?\s+({_IDENT})\s*(?:=.*)?$", re.S)
_PHYSICAL_QUBIT = re.compile(r"\$(\d+)")
_GATE_DEF = re.compile(rf"^gate\s+({_IDENT})")
_FOR_RANGE = re.compile(
    r"^for\b.*?\bin\s*\[\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?\]\s*$", re.S
)
_FOR_SET = re.compile(r"^for\b.*?\bin\s*\{([^}]*)\}\s*$", re.S)
_CONDITION = re.compile(r"^(?:if|while)\s*\(")
_MODIFIER = re.compile(r"^(?:ctrl|negctrl|inv|pow)\b\s*(?:\([^)]*\))?\s*@\s*")
_REGISTER_ARG = re.compile(rf"^({_IDENT})\s*(\[\s*([^\]]*)\])?$")
_SLICE = re.compile(r"^(-?\d+)\s*:\s*(-?\d+)(?:\s*:\s*(-?\d+))?$")
# Statements that declare or annotate but apply nothing to qubits.
_NO_OPERATION = frozenset(
    {
        "OPENQASM",
        "include",
        "opaque",
        "input",
        "output",
        "const",
        "let",
        "int",
        "uint",
        "float",
        "angle",
        "bool",
        "complex",
        "duration",
        "stretch",
        "array",
        "defcalgrammar",
        "cal",
        "extern",
        "return",
        "break",
        "continue",
        "end",
        "pragma",
    }
)


@dataclass(frozen=True)
class QasmBudget:
    """How much circuit one job may describe.

    Attributes:
        max_width: Most qubits, and most clbits, one circuit may declare.
        max_operations: Most expanded operations in the whole job (every circuit).
    """

    max_width: int
    max_operations: int


@dataclass(frozen=True)
class CircuitCost:
    """What the pre-scan found in one circuit."""

    version: str
    qubits: int
    clbits: int
    operations: int


@dataclass(frozen=True)
class _Statement:
    head: str
    body: tuple[_Statement, ...] | None  # None for `...;`, a tuple for `... { }`


def too_large(
    message: str, *, limit: str, value: int, maximum: int, field: str, index: int | None = None
) -> InvalidArgumentError:
    """A CIRCUIT_TOO_LARGE error naming the server option (``limit``) that refused it."""
    metadata: dict[str, object] = {"limit": limit, "value": value, "max": maximum}
    if index is not None:
        metadata["circuit_index"] = index
    return InvalidArgumentError("CIRCUIT_TOO_LARGE", message, metadata=metadata, field=field)


def version_of(source: str) -> str:
    """ "2" or "3", from the ``OPENQASM`` header ("2" when there is none)."""
    match = _VERSION.search(source)
    return match.group(1) if match else "2"


def strip_line_comments(source: str) -> str:
    """Removes ``//`` comments, except where ``//`` sits inside a string literal."""
    lines = []
    for line in source.split("\n"):
        cut = line.find("//")
        # An odd number of quotes before `//` means it is inside a string: keep the line,
        # so nothing after it can hide from the include check.
        while cut != -1 and line.count('"', 0, cut) % 2 == 1:
            cut = line.find("//", cut + 2)
        lines.append(line if cut == -1 else line[:cut])
    return "\n".join(lines)


def check_includes(source: str, index: int) -> None:
    """Refuses every include but the standard ones.

    Block comments are *not* removed first: whatever a parser might read as an include
    must be a standard one, so a mention inside ``/* */`` is refused too (rare, and the
    message says why).

    Raises:
        InvalidArgumentError: QASM_INCLUDE_FORBIDDEN naming the file.
    """
    text = strip_line_comments(source)
    for word in _INCLUDE_WORD.finditer(text):
        statement = _INCLUDE_STATEMENT.match(text, word.start())
        name = statement.group(1) if statement else text[word.start() : word.start() + 60]
        if statement is None or name not in STANDARD_INCLUDES:
            shown = " ".join(name.split())[:100]
            raise InvalidArgumentError(
                "QASM_INCLUDE_FORBIDDEN",
                f'Circuit {index} includes "{shown}"; only "qelib1.inc" (OpenQASM 2) and '
                '"stdgates.inc" (OpenQASM 3) may be included, and the server never reads '
                "files named by a request.",
                metadata={"circuit_index": index, "include": shown},
                field=f"circuits[{index}].qasm",
            )


def _split(text: str, start: int, depth: int, index: int) -> tuple[list[_Statement], int]:
    """Statements of `text` from `start` up to the `}` closing this level (or the end)."""
    if depth > MAX_NESTING:
        raise too_large(
            f"Circuit {index} nests blocks deeper than {MAX_NESTING} levels.",
            limit="nesting",
            value=depth,
            maximum=MAX_NESTING,
            field=f"circuits[{index}].qasm",
            index=index,
        )
    statements: list[_Statement] = []
    position = start
    while True:
        match = _DELIMITERS.search(text, position)
        if match is None:
            tail = text[position:].strip()
            if tail:
                statements.append(_Statement(tail, None))
            return statements, len(text)
        head = text[position : match.start()].strip()
        mark = match.group()
        if mark == ";":
            if head:
                statements.append(_Statement(head, None))
            position = match.end()
        elif mark == "{":
            body, position = _split(text, match.end(), depth + 1, index)
            statements.append(_Statement(head, tuple(body)))
        else:  # "}" closes this level
            if head:
                statements.append(_Statement(head, None))
            return statements, match.end()


def _literal_size(text: str, what: str, index: int) -> int:
    value = text.strip()
    if not value.isdigit():
        raise InvalidArgumentError(
            "INVALID_QASM",
            f"Circuit {index} declares the {what} with size '{value[:40]}'; register sizes "
            "must be integer literals.",
            metadata={"circuit_index": index},
            field=f"circuits[{index}].qasm",
        )
    return int(value)


class _Scan:
    """The running totals of one circuit's pre-scan."""

    def __init__(self, index: int, cap: int) -> None:
        self.index = index
        self.cap = cap  # totals stop growing past this: they are only compared to it
        self.registers: dict[str, int] = {}
        self.gates: dict[str, int] = {}
        self.qubits = 0
        self.clbits = 0
        self.physical = 0

    def statements(self, statements: Sequence[_Statement], in_gate: bool) -> int:
        total = 0
        for statement in statements:
            total = min(self.cap, total + self.statement(statement, in_gate))
        return total

    def statement(self, statement: _Statement, in_gate: bool) -> int:
        head = statement.head
        if statement.body is not None:
            return self.block(head, statement.body, in_gate)
        if self.declaration(head):
            return 0
        condition = _CONDITION.match(head)
        if condition is not None:
            head = _after_parentheses(head, condition.end() - 1)
        return self.application(head, in_gate)

    def block(self, head: str, body: tuple[_Statement, ...], in_gate: bool) -> int:
        gate = _GATE_DEF.match(head)
        if gate is not None:
            # A definition costs nothing until it is called; a call costs its body.
            self.gates[gate.group(1)] = max(1, self.statements(body, True))
            return 0
        inner = self.statements(body, in_gate or head.startswith(("def", "defcal")))
        if head.startswith(("def", "defcal", "box")) and not head.startswith("defcalgrammar"):
            return inner if head.startswith("box") else 0
        return min(self.cap, inner * _iterations(head))

    def declaration(self, head: str) -> bool:
        old = _OLD_REGISTER.match(head)
        if old is not None:
            kind, name, size_text = old.groups()
            size = _literal_size(size_text, f"register {name}", self.index)
            self._add(kind == "qreg", name, size)
            return True
        new = _NEW_REGISTER.match(head)
        if new is not None:
            kind, size_text, name = new.groups()
            size = 1
            if size_text is not None:
                size = _literal_size(size_text, f"{kind} {name}", self.index)
            self._add(kind == "qubit", name, size)
            return True
        return head.split(None, 1)[0].split("[", 1)[0] in _NO_OPERATION

    def _add(self, quantum: bool, name: str, size: int) -> None:
        self.registers[name] = size
        if quantum:
            self.qubits += size
        else:
            self.clbits += size

    def application(self, head: str, in_gate: bool) -> int:
        """Operations one gate/measure/reset/barrier statement expands to."""
        for physical in _PHYSICAL_QUBIT.findall(head):
            self.physical = max(self.physical, int(physical) + 1)
        if "=" in head and "measure" in head:
            # `c = measure q;` (QASM 3): the measured side decides the broadcast.
            head = head.split("=", 1)[1].strip()
        while (modifier := _MODIFIER.match(head)) is not None:
            head = head[modifier.end() :]
        name_match = re.match(rf"({_IDENT})", head)
        if name_match is None:
            return 1
        name = name_match.group(1)
        rest = head[name_match.end() :].lstrip()
        if rest.startswith("("):
            rest = _after_parentheses(rest, 0)
        per_call = self.gates.get(name, 1)
        width = 1 if in_gate else self.broadcast(rest.replace("->", ","))
        return min(self.cap, per_call * width)

    def broadcast(self, arguments: str) -> int:
        """How many times a statement repeats over whole registers or slices."""
        widest = 1
        for argument in arguments.split(","):
            match = _REGISTER_ARG.match(argument.strip())
            if match is None:
                continue
            name, bracket, inside = match.groups()
            if bracket is None:
                widest = max(widest, self.registers.get(name, 1))
                continue
            part = _SLICE.match(inside.strip())
            if part is not None:
                first, last, step = (int(x) if x else 1 for x in part.groups())
                widest = max(widest, abs(last - first) // max(abs(step), 1) + 1)
        return widest


def _after_parentheses(text: str, opening: int) -> str:
    """`text` after the parenthesised group opening at `opening` (nesting aware)."""
    depth = 0
    for position in range(opening, len(text)):
        if text[position] == "(":
            depth += 1
        elif text[position] == ")":
            depth -= 1
            if depth == 0:
                return text[position + 1 :].strip()
    return ""


def _iterations(head: str) -> int:
    """Literal iteration count of a `for` header; 1 for anything else."""
    ranged = _FOR_RANGE.match(head)
    if ranged is not None:
        first, last = int(ranged.group(1)), int(ranged.group(2))
        step = int(ranged.group(3)) if ranged.group(3) else 1
        return abs(last - first) // max(abs(step), 1) + 1
    listed = _FOR_SET.match(head)
    if listed is not None:
        return max(1, listed.group(1).count(",") + 1)
    return 1


def _check_numbers(text: str, index: int) -> None:
    for match in _NUMBER.finditer(text):
        if not math.isfinite(float(match.group())):
            shown = match.group()[:40]
            raise InvalidArgumentError(
                "INVALID_QASM",
                f"Circuit {index} contains the number {shown}, which is not finite.",
                metadata={"circuit_index": index, "value": shown},
                field=f"circuits[{index}].qasm",
            )


def scan_circuit(source: str, index: int, budget: QasmBudget, spent: int = 0) -> CircuitCost:
    """Pre-scans one circuit against `budget`; `spent` operations were used by earlier ones.

    Raises:
        InvalidArgumentError: QASM_INCLUDE_FORBIDDEN, CIRCUIT_TOO_LARGE or INVALID_QASM.
    """
    field = f"circuits[{index}].qasm"
    check_includes(source, index)
    text = _BLOCK_COMMENT.sub(" ", strip_line_comments(source))
    _check_numbers(text, index)
    statements, _ = _split(text, 0, 0, index)
    scan = _Scan(index, budget.max_operations + 1)
    operations = scan.statements(statements, False)
    qubits = max(scan.qubits, scan.physical)
    for count, kind in ((qubits, "qubits"), (scan.clbits, "clbits")):
        if count > budget.max_width:
            raise too_large(
                f"Circuit {index} declares or addresses {count} {kind}; at most "
                f"{budget.max_width} are accepted (server option --max-circuit-width).",
                limit="max_circuit_width",
                value=count,
                maximum=budget.max_width,
                field=field,
                index=index,
            )
    if spent + operations > budget.max_operations:
        total = spent + operations
        # Totals stop counting at the cap: past it, only "more than the limit" is known.
        shown = f"more than {budget.max_operations}" if operations >= scan.cap else f"{total}"
        raise too_large(
            f"The job expands to {shown} operations by circuit {index} (register "
            f"broadcasts, custom gates and loops multiplied out); at most "
            f"{budget.max_operations} are accepted (server option --max-operations).",
            limit="max_operations",
            value=total,
            maximum=budget.max_operations,
            field=field,
            index=index,
        )
    return CircuitCost(version_of(source), qubits, scan.clbits, operations)


LIGHT_WORK = 200_000
"""Quick-estimate units below which a job counts as light (see :func:`quick_estimate`)."""
_QASM3_WEIGHT = 20  # the OpenQASM 3 importer is ~50x slower per byte than the QASM 2 one
_ANY_DECLARED = re.compile(r"\b(?:qreg\s+\w+\s*\[\s*(\d+)|qubit\s*\[\s*(\d+))")


def quick_estimate(sources: Sequence[str], stop_above: int | None = None) -> int:
    """A rough upper bound of a job's parsing work, computed at C speed (no pre-scan).

    Bytes (OpenQASM 3 weighted by its slower importer) plus statements times the widest
    register (what broadcasting can expand to). Used only to keep light jobs apart from
    heavy ones; the limits themselves are enforced by :func:`scan_job`. Counting stops
    once the total exceeds `stop_above`.
    """
    work = 0
    for source in sources:
        if stop_above is not None and work > stop_above:
            break
        widest = max((int(a or b) for a, b in _ANY_DECLARED.findall(source)), default=1)
        weight = _QASM3_WEIGHT if version_of(source) == "3" else 1
        work += len(source) * weight + source.count(";") * widest
    return work


def scan_job(sources: Sequence[str], budget: QasmBudget) -> Iterator[CircuitCost]:
    """Pre-scans every circuit of a job, counting operations across all of them."""
    spent = 0
    for index, source in enumerate(sources):
        cost = scan_circuit(source, index, budget, spent)
        spent += cost.operations
        yield cost
