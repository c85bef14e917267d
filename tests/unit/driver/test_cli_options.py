"""`qpi-driver start` options: the server's duration syntax, executor options, fingerprint
and log-level checks (the daemon itself is replaced by a recorder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import qpi.driver.daemon
from qpi.common import durations
from qpi.driver.cli import app
from qpi.driver.settings import DriverSettings, normalize_fingerprint, parse_executor_options


class Recorder:
    seen: list[DriverSettings] = []

    def __init__(self, settings: DriverSettings, *args: Any) -> None:
        Recorder.seen.append(settings)

    async def run(self) -> int:
        return 0


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setattr(qpi.driver.daemon, "DriverDaemon", Recorder)
    Recorder.seen = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, Any]:
        base = ["start", "-t", "tok", "-d", str(tmp_path / "d"), "--ca-file", str(tmp_path / "c")]
        result = CliRunner().invoke(app, [*base, *args], env=env or {})
        settings = Recorder.seen[-1] if Recorder.seen else None
        # typer draws errors in a box whose lines wrap: compare the words only.
        words = " ".join(result.output.replace("│", " ").split())
        return result.exit_code, words, settings

    return start


def test_job_timeout_takes_the_servers_duration_syntax(started: Any) -> None:
    code, output, settings = started(env={"QPI_JOB_TIMEOUT": "20s"})
    assert code == 0, output
    assert settings.job_timeout == 20.0
    for text, seconds in [("1m30s", 90.0), ("250ms", 0.25), ("15", 15.0), ("0", 0.0)]:
        code, output, settings = started("--job-timeout", text)
        assert code == 0, output
        assert settings.job_timeout == seconds
    code, output, settings = started("--shutdown-grace", "2m")
    assert settings.shutdown_grace == 120.0


@pytest.mark.parametrize("bad", ["20 seconds", "-5s", "abc", "1x"])
def test_a_bad_duration_is_refused_naming_the_option(started: Any, bad: str) -> None:
    code, output, _ = started("--job-timeout", bad)
    assert code == 2
    assert "--job-timeout" in output
    assert "invalid duration" in output


def test_driver_and_server_share_one_duration_parser() -> None:
    from qpi.server import durations as server_durations

    assert server_durations.parse_duration is durations.parse_duration


def test_executor_options_reach_the_settings_decoded(started: Any) -> None:
    code, output, settings = started(
        "-o", "count=3", "--executor-option", "flag=true", "-o", "path=/opt/x.yml", "-o", "f=0.5"
    )
    assert code == 0, output
    assert settings.executor_options == {"count": 3, "flag": True, "path": "/opt/x.yml", "f": 0.5}
    kwargs = settings.executor_kwargs()
    assert kwargs["count"] == 3
    assert "device_config" not in kwargs  # no config given: the executor's shipped example


@pytest.mark.parametrize("bad", ["novalue", "=x", "data_dir=/x", "bad key=1"])
def test_bad_executor_options_are_refused(started: Any, bad: str) -> None:
    code, output, _ = started("-o", bad)
    assert code == 2
    assert "executor" in output


def test_repeated_executor_option_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_executor_options(["a=1", "a=2"])


def test_fingerprints_must_be_sha256(started: Any) -> None:
    code, output, _ = started("--ca-fingerprint", "abcd")
    assert code == 2
    assert "64 hex" in output
    colons = ":".join(["AB"] * 32)
    code, output, settings = started("--ca-fingerprint", colons)
    assert code == 0, output
    assert settings.ca_fingerprint == "ab" * 32
    assert normalize_fingerprint(" " + "CD" * 32) == "cd" * 32
    with pytest.raises(ValueError, match="64 hex"):
        normalize_fingerprint("zz" * 32)


def test_log_level_is_checked(started: Any) -> None:
    code, output, _ = started("--log-level", "chatty")
    assert code == 2
    code, output, settings = started("--log-level", "debug")
    assert code == 0, output
    assert settings.log_level == "DEBUG"
