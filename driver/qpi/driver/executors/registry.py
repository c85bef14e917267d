"""Name -> executor class resolution with lazy imports and extra checks."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from qpi.driver.executors.base import Executor


@dataclass(frozen=True)
class BuiltinExecutor:
    """Where a built-in executor lives and what it needs.

    Attributes:
        target: Import path "module:ClassName".
        extra: Package extra providing its dependencies, if any.
        requires: Top-level modules the extra installs (checked without importing them).
    """

    target: str
    extra: str | None = None
    requires: tuple[str, ...] = ()


BUILTIN_EXECUTORS: dict[str, BuiltinExecutor] = {
    "mock": BuiltinExecutor("qpi.driver.executors.mock:MockExecutor"),
    "qiskit_aer": BuiltinExecutor(
        "qpi.driver.executors.qiskit_aer:QiskitAerExecutor", "aer", ("qiskit_aer",)
    ),
    "quantify": BuiltinExecutor(
        "qpi.driver.executors.quantify:QuantifyExecutor",
        "quantify",
        ("quantify_scheduler", "quantify_core", "qblox_instruments"),
    ),
    "qblox": BuiltinExecutor(
        "qpi.driver.executors.qblox:QbloxExecutor",
        "qblox",
        ("qblox_scheduler", "qblox_instruments"),
    ),
    "presto": BuiltinExecutor("qpi.driver.executors.presto:PrestoExecutor"),
}


class ExecutorNotAvailable(RuntimeError):
    """The executor name is unknown or its optional dependencies are missing."""


def check_available(name: str) -> None:
    """Verifies that an executor can be loaded, without importing heavy modules.

    Args:
        name: A built-in name or an import path "pkg.module:ClassName".

    Raises:
        ExecutorNotAvailable: With an installation hint when an extra is missing.
    """
    builtin = BUILTIN_EXECUTORS.get(name)
    if builtin is None:
        if ":" not in name:
            known = ", ".join(BUILTIN_EXECUTORS)
            raise ExecutorNotAvailable(
                f"unknown executor {name!r}; choose one of {known} or give 'pkg.module:ClassName'"
            )
        module = name.split(":", 1)[0]
        if importlib.util.find_spec(module.split(".")[0]) is None:
            raise ExecutorNotAvailable(f"cannot import module {module!r} for executor {name!r}")
        return
    for module in builtin.requires:
        if importlib.util.find_spec(module) is None:
            raise ExecutorNotAvailable(
                f"the {name} executor needs extra '{builtin.extra}': "
                f"pip install 'qpi-driverd[{builtin.extra}]'"
            )


def resolve_executor(name: str) -> type[Executor]:
    """Imports and returns the executor class for `name`.

    Args:
        name: A built-in name (mock, qiskit_aer, quantify, qblox, presto) or an import path
            "pkg.module:ClassName" of a user executor.

    Raises:
        ExecutorNotAvailable: If it cannot be imported or is not an Executor subclass.
    """
    check_available(name)
    builtin = BUILTIN_EXECUTORS.get(name)
    target = builtin.target if builtin else name
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ExecutorNotAvailable(f"cannot load executor {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise ExecutorNotAvailable(f"{target} is not a subclass of qpi.driver.Executor")
    return cls
