"""The `qpi` command: subprocess runs of the real entry point plus in-process dispatch checks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

from qpi.server import cli
from qpi.server.config import options
from qpi.server.settings import ServerSettings


def run_qpi(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QPI_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "qpi.server", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = run_qpi("version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "v" + metadata.version("qpi-server")
    flag = run_qpi("--version", cwd=tmp_path)
    assert flag.stdout == result.stdout


def test_superuser_upsert_loads_the_store_not_the_server(tmp_path: Path) -> None:
    """`make demo` runs the command before every start: it must not pay for the gRPC and
    REST layers, whose imports took most of its time."""
    probe = (
        "import sys, qpi.server.superuser; "
        "print(sorted(m for m in ('qpi.server.app', 'fastapi', 'qpi.gateway', 'qpi.server.rpc')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_superuser_upsert_saves_an_administrator_then_resets_its_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hashes = []
    for password in ("a-long-password", "another-password"):
        done = run_qpi(
            "superuser",
            "upsert",
            "root@example.com",
            password,
            "--data-dir",
            str(data),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "superuser root@example.com saved" in done.stdout
        with sqlite3.connect(data / "qpi.db") as db:
            rows = db.execute(
                "SELECT is_superuser, password_hash FROM users WHERE email = ?",
                ("root@example.com",),
            ).fetchall()
        assert len(rows) == 1
        assert rows[0][0] == 1
        assert password not in rows[0][1]  # hashed at rest
        hashes.append(rows[0][1])
    assert hashes[0] != hashes[1]


def test_console_script_version(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "qpi"
    assert script.exists(), "`make setup` installs the qpi console script into the venv"
    result = subprocess.run(
        [str(script), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v")


def test_serve_help_lists_every_option(tmp_path: Path) -> None:
    result = run_qpi("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for needle in ("--idle-threshold", "QPI_IDLE_THRESHOLD", "idleThreshold", "default: 5s"):
        assert needle in text
    for opt in options():
        assert opt.flag in text
        assert opt.env in text
        if opt.config_key:
            assert opt.config_key in text
    assert "Seconds a booked QPU is held" in text


def test_top_level_help(tmp_path: Path) -> None:
    for args in ((), ("--help",)):
        result = run_qpi(*args, cwd=tmp_path)
        assert result.returncode == 0
        assert "serve" in result.stdout
        assert "superuser upsert" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("--idle-threshold=abc",), ("--idle-threshold", "abc"), ("--idle_threshold", "abc")],
)
def test_bad_flag_exits_2_naming_the_flag(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_qpi("serve", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert "--idle-threshold" in result.stderr
    assert "'abc'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_env_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = run_qpi("serve", cwd=tmp_path, env={"QPI_GRPC_PORT": "99999"})
    assert result.returncode == 2
    assert "--grpc-port" in result.stderr
    assert "QPI_GRPC_PORT" in result.stderr


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "qpi.config.yml").write_text("surprise: 1\n")
    result = run_qpi("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert "surprise" in result.stderr


def test_unknown_option_exits_2(tmp_path: Path) -> None:
    result = run_qpi("serve", "--no-such-option=1", cwd=tmp_path)
    assert result.returncode == 2
    assert "--no-such-option" in result.stderr


def test_unknown_command_fails(tmp_path: Path) -> None:
    result = run_qpi("frobnicate", cwd=tmp_path)
    assert result.returncode == 2


# --- in-process: how flags reach the app layer ---------------------------------------------


class FakeApp:
    def __init__(self) -> None:
        self.served: list[ServerSettings] = []
        self.upserts: list[tuple[ServerSettings, str, str]] = []


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeApp:
    recorder = FakeApp()
    module = types.ModuleType("qpi.server.app")

    def run(settings: ServerSettings) -> None:
        recorder.served.append(settings)

    def upsert_superuser(settings: ServerSettings, email: str, password: str) -> str:
        recorder.upserts.append((settings, email, password))
        return f"Superuser {email} saved."

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qpi.server.app", module)
    superuser = types.ModuleType("qpi.server.superuser")
    superuser.upsert_superuser = upsert_superuser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qpi.server.superuser", superuser)
    monkeypatch.setattr(cli, "_configure_logging", lambda level: None)
    for key in list(os.environ):
        if key.startswith("QPI_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return recorder


def test_serve_flag_forms_reach_settings(
    fake_app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QPI_SERVER_PORT", "9001")
    monkeypatch.setenv("QPI_MAX_SHOTS", "5")
    code = cli.main(
        [
            "serve",
            "--grpc-port=5",
            "--grpc_port",
            "6",  # both spellings name the same option; the last one wins
            "--idle-threshold=1h30m",
            "--insecure",
            "--domain=1e3.example.org",
            "--max-shots",
            "7",
            "--oauth2-providers",
            '[{"name": "google", "clientId": "c", "issuer": "https://accounts.google.com"}]',
            "--log-level=debug",
        ]
    )
    assert code == 0
    (settings,) = fake_app.served
    assert settings.grpc_port == 6
    assert settings.idle_threshold == 5400.0
    assert settings.insecure is True
    assert settings.domain == "1e3.example.org"
    assert settings.max_shots == 7  # flag beats env
    assert settings.server_port == 9001  # env beats default
    assert settings.oauth2_providers == (
        '[{"name": "google", "clientId": "c", "issuer": "https://accounts.google.com"}]'
    )
    assert settings.log_level == "DEBUG"


def test_serve_bad_value_in_process(fake_app: FakeApp, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--heartbeat-timeout=1s"])
    assert info.value.code == 2
    assert "--heartbeat-timeout" in capsys.readouterr().err
    assert fake_app.served == []


def test_superuser_upsert_keeps_arguments_as_typed(
    fake_app: FakeApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    code = cli.main(["superuser", "upsert", "admin@example.com", "1e3", "--data-dir", str(data)])
    assert code == 0
    ((settings, email, password),) = fake_app.upserts
    assert (email, password) == ("admin@example.com", "1e3")
    assert settings.data_dir == str(data)
    assert "admin@example.com" in capsys.readouterr().out


@pytest.mark.parametrize("password", ["-zE8C9qWja9ycWqk", "--data-dir", "-1", "True", "[1]"])
def test_superuser_upsert_takes_any_password_verbatim(
    fake_app: FakeApp, tmp_path: Path, password: str
) -> None:
    data = tmp_path / "data"
    code = cli.main(["superuser", "upsert", "admin@example.com", password, "--data-dir", str(data)])
    assert code == 0
    ((settings, email, typed),) = fake_app.upserts
    assert (email, typed) == ("admin@example.com", password)
    assert settings.data_dir == str(data)


def test_superuser_upsert_without_password_is_a_usage_error(fake_app: FakeApp) -> None:
    code = cli.main(["superuser", "upsert", "admin@example.com"])
    assert code == 2
    assert fake_app.upserts == []


def test_superuser_upsert_rejects_serve_options(fake_app: FakeApp) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["superuser", "upsert", "a@example.com", "pw", "--grpc-port=1"])
    assert info.value.code == 2
    assert fake_app.upserts == []


def test_superuser_upsert_rejects_bad_email(fake_app: FakeApp) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["superuser", "upsert", "nobody", "pw"])
    assert info.value.code == 2
