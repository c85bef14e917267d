"""The shared logging policy: QPI at the chosen level, other libraries at WARNING unless
DEBUG, even when a library sets its own logger to INFO."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from qpi.common.logs import configure_logging, level_number


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own_level = logging.getLogger("qpi").level
    chatty = logging.getLogger("chatty.lib")
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("qpi").setLevel(own_level)
    chatty.setLevel(logging.NOTSET)


def _emit() -> None:
    logging.getLogger("qpi.driver.daemon").info("own info")
    logging.getLogger("qpi.driver.daemon").debug("own debug")
    logging.getLogger("qiskit.passmanager").info("library info")
    logging.getLogger("alembic.runtime.plugins").warning("library warning")
    chatty = logging.getLogger("chatty.lib")
    chatty.setLevel(logging.INFO)  # what some libraries do to themselves
    chatty.info("self-promoted info")


@pytest.mark.usefixtures("restore_logging")
def test_default_level_keeps_qpi_info_and_library_warnings_only() -> None:
    out = io.StringIO()
    configure_logging("INFO", "%(levelname)s %(name)s %(message)s", out)
    _emit()
    assert out.getvalue().splitlines() == [
        "INFO qpi.driver.daemon own info",
        "WARNING alembic.runtime.plugins library warning",
    ]


@pytest.mark.usefixtures("restore_logging")
def test_debug_shows_everything() -> None:
    out = io.StringIO()
    configure_logging("debug", "%(levelname)s %(name)s %(message)s", out)
    _emit()
    lines = out.getvalue().splitlines()
    assert "DEBUG qpi.driver.daemon own debug" in lines
    assert "INFO qiskit.passmanager library info" in lines
    assert "INFO chatty.lib self-promoted info" in lines


@pytest.mark.usefixtures("restore_logging")
def test_error_level_silences_library_warnings_too() -> None:
    out = io.StringIO()
    configure_logging("ERROR", "%(levelname)s %(name)s %(message)s", out)
    _emit()
    assert out.getvalue() == ""


def test_unknown_levels_are_refused() -> None:
    assert level_number("warning") == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        level_number("chatty")
