"""README promises: the configuration table lists every option as the code defines it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_table_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from config_table import table
    finally:
        sys.path.pop(0)
    assert table() in (ROOT / "README.md").read_text(), (
        "run scripts/config_table.py and update README.md"
    )


def test_readme_names_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text
    assert "make test" in text
