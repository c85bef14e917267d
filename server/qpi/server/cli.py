"""The ``qpi`` command: ``serve``, ``superuser upsert`` and ``version``.

Dispatch uses python-fire, but every argument is kept as the string the user typed
(fire would otherwise literal-eval ``--domain=1e3`` into a float or a password ``1234``
into an int) so that :func:`qpi.server.config.load_settings` validates flags exactly like
environment variables. Help texts are printed by this module, without a pager, because
fire's generated help cannot show the env var and config key of each option.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, NoReturn, TypeVar

import fire
from fire import decorators as fire_decorators

from qpi.common.logs import configure_logging
from qpi.server.config import DEFAULT_CONFIG_FILE, ConfigError, load_settings, options
from qpi.server.settings import ServerSettings

__all__ = ["main", "serve_help", "version_string"]

_EXIT_USAGE = 2
_HELP_FLAGS = frozenset({"-h", "--help", "help"})
# Options `superuser upsert` accepts: where the database lives, nothing about serving.
_SUPERUSER_OPTIONS = ("data_dir", "database_url", "config_file", "log_level")


class _UsageError(Exception):
    """Bad command-line input; printed without a traceback, exit code 2."""


def version_string() -> str:
    """Returns the installed qpi-server version as ``v<version>``."""
    try:
        return "v" + metadata.version("qpi-server")
    except metadata.PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "v0.0.0+unknown"


def _as_text(options_given: dict[str, object]) -> dict[str, object]:
    """Normalises option names (``grpc-port`` → ``grpc_port``) and values to strings.

    Fire already maps ``-`` to ``_`` and, with :func:`_keep_strings`, passes strings; this
    is a safety net for direct callers and future fire versions.
    """
    return {
        key.replace("-", "_"): value if isinstance(value, str) else str(value)
        for key, value in options_given.items()
    }


def _load(cli_options: dict[str, object]) -> ServerSettings:
    try:
        return load_settings(cli_options, os.environ)
    except ConfigError as exc:
        raise _UsageError(str(exc)) from None


def _configure_logging(level: str) -> None:
    # QPI's loggers at `level`; alembic, grpc, uvicorn... at WARNING unless DEBUG.
    try:
        configure_logging(level)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


_F = TypeVar("_F", bound=Callable[..., Any])


def _keep_strings(function: _F) -> _F:
    """Tells fire to pass every argument through as the typed string (no literal-eval)."""
    fire_decorators.SetParseFn(str)(function)
    return function


def _app() -> Any:
    """Imports the application layer lazily so `qpi version` and `--help` stay fast."""
    return importlib.import_module("qpi.server.app")


def _run(result: object) -> None:
    """Runs a coroutine returned by the app layer; plain results need nothing."""
    if inspect.iscoroutine(result):
        asyncio.run(result)


@_keep_strings
def serve(**flags: object) -> None:
    """Starts the QPI server (see ``qpi serve --help`` for every option)."""
    settings = _load(_as_text(flags))
    _configure_logging(settings.log_level)
    _run(_app().run(settings))


@_keep_strings
def superuser_upsert(email: str, password: str, **flags: object) -> None:
    """Creates an administrator or resets its password."""
    given = _as_text(flags)
    not_allowed = sorted(name for name in given if name not in _SUPERUSER_OPTIONS)
    if not_allowed:
        names = ", ".join("--" + name.replace("_", "-") for name in not_allowed)
        raise _UsageError(f"superuser upsert does not accept {names}")
    if not email.strip() or "@" not in email:
        raise _UsageError(f"invalid e-mail address {email!r}")
    if not password:
        raise _UsageError("the password must not be empty")
    settings = _load(given)
    _configure_logging(settings.log_level)
    # Its own module: the command needs the store, not the whole server (see there).
    importlib.import_module("qpi.server.superuser").upsert_superuser(settings, email, password)
    print(f"superuser {email} saved")


def version() -> None:
    """Prints the server version."""
    print(version_string())


def serve_help() -> str:
    """Returns the help text of ``qpi serve``, generated from ServerSettings."""
    width = 100
    lines = [
        "Usage: qpi serve [--option=VALUE | --option VALUE ...]",
        "",
        *textwrap.wrap(
            "Starts the QPI server. Every option can be given as a command-line flag, an "
            "environment variable or a key in the config file (YAML for .yml/.yaml, JSON "
            "otherwise; camelCase or snake_case keys). Precedence: flag > environment > "
            "config file > default. Durations accept 5s, 250ms, 2h, 1h30m or plain seconds; "
            "booleans accept true/false, 1/0, yes/no, on/off; a bare boolean flag "
            "(--insecure) means true. Invalid values stop the server with exit code 2.",
            width,
        ),
        "",
        "Options:",
    ]
    for opt in options():
        lines.append(f"  {opt.flag}={opt.metavar}")
        lines.extend(
            textwrap.wrap(
                opt.help or "(undocumented)",
                width,
                initial_indent="      ",
                subsequent_indent="      ",
            )
        )
        key = opt.config_key if opt.config_key is not None else "(none: selects the file)"
        lines.append(f"      env: {opt.env}   config key: {key}   default: {opt.default_text}")
    lines.append("  -h, --help")
    lines.append("      Show this help and exit.")
    return "\n".join(lines) + "\n"


def _superuser_help() -> str:
    return textwrap.dedent(
        f"""\
        Usage: qpi superuser upsert EMAIL PASSWORD [--data-dir=DIR] [--database-url=URL]
                                    [--config-file=FILE] [--log-level=LEVEL]

        Creates an administrator account, or sets the password of an existing one.
        The database is located like `qpi serve` does (flags, QPI_* environment, config
        file {DEFAULT_CONFIG_FILE}); see `qpi serve --help`.
        """
    )


def _main_help() -> str:
    return textwrap.dedent(
        """\
        Usage: qpi COMMAND [ARGS...]

        QPI: control plane for quantum computers.

        Commands:
          serve                             Start the server (`qpi serve --help` lists options).
          superuser upsert EMAIL PASSWORD   Create an administrator or reset its password.
          version                           Print the version (also: qpi --version).
        """
    )


def _fail(message: str) -> NoReturn:
    print(f"qpi: error: {message}", file=sys.stderr)
    raise SystemExit(_EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qpi`` console script.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code: 0 on success, 2 for usage or configuration errors.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # Help is answered here, before fire, so it never goes through a pager and can show
    # env vars, config keys and defaults (fire only knows "**flags").
    if not args or args[0] in _HELP_FLAGS:
        print(_main_help(), end="")
        return 0
    if args == ["--version"]:
        print(version_string())
        return 0
    if args[0] == "serve" and any(arg in ("-h", "--help") for arg in args[1:]):
        print(serve_help(), end="")
        return 0
    if args[0] == "superuser" and (
        len(args) == 1 or any(arg in ("-h", "--help") for arg in args[1:])
    ):
        print(_superuser_help(), end="")
        return 0

    # Belt and braces: should fire still decide to show help, print it instead of paging.
    os.environ.setdefault("PAGER", "cat")
    commands: dict[str, object] = {
        "serve": serve,
        "superuser": {"upsert": superuser_upsert},
        "version": version,
    }
    if args[:2] == ["superuser", "upsert"] and len(args) >= 4:
        # EMAIL and PASSWORD are taken verbatim: fire would read a password such as
        # "-x7..." as a flag and "1e3" as a number.
        email, password = args[2], args[3]

        @_keep_strings
        def upsert(**flags: object) -> None:
            superuser_upsert(email, password, **flags)

        commands = {"upsert": upsert}
        args = ["upsert", *args[4:]]
    try:
        fire.Fire(commands, command=args, name="qpi")
    except _UsageError as exc:
        _fail(str(exc))
    except fire.core.FireExit as exc:
        # fire already printed its own message (unknown command, missing argument...).
        return int(exc.code or 0)
    return 0
