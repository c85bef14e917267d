"""The contracts: generated stubs are current and buf lint passes."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts/check_proto_current.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_passes() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/buf"), "lint"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
