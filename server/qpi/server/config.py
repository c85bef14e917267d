"""Builds :class:`ServerSettings` from CLI flags, environment and a config file.

Precedence is CLI flag > environment (``QPI_<FIELD>``) > config file (JSON or YAML,
keys in camelCase or snake_case) > default. Every value is type-checked and validated;
a bad value is never ignored but reported as :class:`ConfigError` naming the option,
the value and where it came from.

The option list is derived from the :class:`ServerSettings` dataclass itself, including
the help text (its attribute docstrings), so a new field automatically becomes a flag,
an env var, a config key and a help entry.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import ipaddress
import json
import logging
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from qpi.server import settings as settings_module
from qpi.server.durations import format_duration, parse_duration
from qpi.server.security.oauth2_providers import ProviderConfigError, parse_providers
from qpi.server.security.throttle import parse_limit
from qpi.server.settings import ServerSettings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DURATION_FIELDS",
    "ConfigError",
    "OptionInfo",
    "load_settings",
    "options",
    "parse_shot_seconds",
]

DEFAULT_CONFIG_FILE = "qpi.config.yml"

DURATION_FIELDS: frozenset[str] = frozenset(
    {
        "idle_threshold",
        "recovery_interval",
        "job_timeout",
        "dispatch_poll_interval",
        "heartbeat_interval",
        "heartbeat_timeout",
        "session_ttl",
        "events_retention",
        "events_prune_interval",
        "booking_max_length",
        "booking_max_horizon",
        "booking_max_weekly",
        "max_parse_time",
    }
)

# Fields that are not user options: ``extra`` is reserved for forward compatibility.
_NOT_OPTIONS = frozenset({"extra"})

# Durations where zero would make a timer spin or a lease expire immediately.
_POSITIVE_DURATIONS = frozenset(
    {
        "recovery_interval",
        "job_timeout",
        "dispatch_poll_interval",
        "heartbeat_interval",
        "heartbeat_timeout",
        "session_ttl",
        "events_prune_interval",
    }
)

# Rate limits in the `limits` library's notation ("10 per 15 minutes").
_RATE_FIELDS = frozenset({"login_limit_per_account", "login_limit_per_address"})

_COLLECTION_FIELDS = (
    "qpus_collection",
    "timeslots_collection",
    "jobs_collection",
    "api_tokens_collection",
    "notifications_collection",
    "qpu_time_requests_collection",
)

# Paths and hosts where an empty string can only be a mistake.
_NON_EMPTY = frozenset(
    {
        "data_dir",
        "bind_host",
        "tls_ca_cert_file",
        "tls_ca_key_file",
        "tls_cert_file",
        "tls_key_file",
    }
)

_LOG_LEVELS = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

_INT_TEXT = re.compile(r"[+-]?\d+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")

Kind = Literal["str", "int", "float", "bool", "duration"]
Source = Literal["flag", "env", "file", "default"]


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message says which and where from."""


@dataclass(frozen=True)
class OptionInfo:
    """Everything the loader and the help text need to know about one option.

    Attributes:
        name: The :class:`ServerSettings` field name (snake_case).
        kind: How string values are converted.
        default: The field's default value.
        help: The field's docstring (one line).
    """

    name: str
    kind: Kind
    default: object
    help: str

    @property
    def flag(self) -> str:
        """The CLI flag, e.g. ``--idle-threshold``."""
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``QPI_IDLE_THRESHOLD``."""
        return "QPI_" + self.name.upper()

    @property
    def config_key(self) -> str | None:
        """The camelCase config-file key, or None for options the file cannot set."""
        if self.name == "config_file":
            return None
        head, *rest = self.name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    @property
    def default_text(self) -> str:
        """The default as a user would type it."""
        if self.kind == "duration":
            return format_duration(float(typing.cast(float, self.default)))
        if self.kind == "bool":
            return "true" if self.default else "false"
        if self.default == "":
            return '""'
        return str(self.default)

    @property
    def metavar(self) -> str:
        """A placeholder for the value in usage lines."""
        return {
            "str": "TEXT",
            "int": "INT",
            "float": "NUMBER",
            "bool": "BOOL",
            "duration": "DURATION",
        }[self.kind]


def _field_docs() -> dict[str, str]:
    """Reads the attribute docstrings of ServerSettings from its source.

    Python does not keep attribute docstrings at runtime, so they are recovered from the
    AST; this keeps settings.py the single place where an option is documented.
    """
    try:
        source = inspect.getsource(settings_module)
    except (OSError, TypeError):
        # Source-less installs (zipapps, stripped wheels) just get empty help lines.
        return {}
    docs: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == ServerSettings.__name__):
            continue
        body = node.body
        for current, following in zip(body, body[1:], strict=False):
            if (
                isinstance(current, ast.AnnAssign)
                and isinstance(current.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[current.target.id] = " ".join(following.value.value.split())
    return docs


def _kind_of(name: str, annotation: object) -> Kind:
    if name in DURATION_FIELDS:
        return "duration"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation is str:
        return "str"
    raise TypeError(f"ServerSettings.{name} has a type the config loader cannot parse")


def _build_options() -> tuple[OptionInfo, ...]:
    hints = typing.get_type_hints(ServerSettings)
    docs = _field_docs()
    result = []
    for fld in dataclasses.fields(ServerSettings):
        if fld.name in _NOT_OPTIONS:
            continue
        result.append(
            OptionInfo(
                name=fld.name,
                kind=_kind_of(fld.name, hints[fld.name]),
                default=fld.default,
                help=docs.get(fld.name, ""),
            )
        )
    return tuple(result)


_OPTIONS: tuple[OptionInfo, ...] = _build_options()
_BY_NAME: dict[str, OptionInfo] = {opt.name: opt for opt in _OPTIONS}


def options() -> tuple[OptionInfo, ...]:
    """Returns every configurable option in ServerSettings field order."""
    return _OPTIONS


@dataclass(frozen=True)
class _Value:
    """A raw value together with where it came from, for error messages."""

    raw: object
    source: Source
    detail: str  # e.g. "env QPI_GRPC_PORT" or "config file qpi.config.yml, key grpcPort"


def _describe(opt: OptionInfo, value: _Value) -> str:
    return f"{opt.flag} (from {value.detail})"


def _error(opt: OptionInfo, value: _Value, reason: str) -> ConfigError:
    return ConfigError(f"invalid value {value.raw!r} for {_describe(opt, value)}: {reason}")


def _coerce(opt: OptionInfo, value: _Value) -> object:
    """Converts a raw value (usually a string) to the option's type."""
    raw = value.raw
    if raw is None:
        raise _error(opt, value, "a value is required (got null)")
    kind = opt.kind
    if kind == "str":
        if opt.name == "oauth2_providers" and isinstance(raw, list):
            # The original config format stores providers as a YAML/JSON list.
            return json.dumps(raw)
        if not isinstance(raw, str):
            raise _error(opt, value, "expected a string")
        return raw
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE:
            return True
        if isinstance(raw, str) and raw.strip().lower() in _FALSE:
            return False
        raise _error(opt, value, "expected a boolean (true/false, 1/0, yes/no, on/off)")
    if kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip()):
            return int(raw.strip())
        raise _error(opt, value, "expected an integer")
    if kind == "float":
        number: float
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                raise _error(opt, value, "expected a number") from None
        else:
            raise _error(opt, value, "expected a number")
        if math.isnan(number):
            raise _error(opt, value, "expected a number")
        return number
    # Durations: numbers are seconds, strings use Go-like syntax.
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise _error(opt, value, "expected a duration such as 5s, 250ms or 1h30m")
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise _error(opt, value, str(exc)) from None


def _check_field(opt: OptionInfo, value: _Value, parsed: object) -> object:
    """Validates one option on its own; returns the (possibly normalised) value."""
    name = opt.name
    if name == "server_port":
        _check_range(opt, value, parsed, 1, 65535)
    elif name == "grpc_port":
        _check_range(opt, value, parsed, 0, 65535)
    elif name == "port_range_start":
        _check_range(opt, value, parsed, 1, 65535)
    elif name == "port_range_end":
        # Exclusive end, so 65536 still allows port 65535.
        _check_range(opt, value, parsed, 2, 65536)
    elif name.startswith("max_") or name == "parser_processes":
        if typing.cast(int, parsed) <= 0:
            raise _error(opt, value, "must be greater than 0")
    elif name in _POSITIVE_DURATIONS:
        if typing.cast(float, parsed) <= 0:
            raise _error(opt, value, "must be greater than 0")
    elif name == "log_level":
        level = _LOG_LEVELS.get(typing.cast(str, parsed).strip().upper())
        if level is None:
            known = ", ".join(sorted(set(_LOG_LEVELS.values())))
            raise _error(opt, value, f"unknown log level (use one of {known})")
        return level
    elif name == "ip_addr":
        try:
            return str(ipaddress.ip_address(typing.cast(str, parsed).strip()))
        except ValueError:
            raise _error(opt, value, "not an IPv4 or IPv6 address") from None
    elif name == "domain":
        domain = typing.cast(str, parsed).strip().rstrip(".")
        if domain and not _is_dns_name(domain):
            raise _error(opt, value, "not a valid DNS name")
        return domain
    elif name in _COLLECTION_FIELDS:
        if not _IDENTIFIER.fullmatch(typing.cast(str, parsed)):
            raise _error(opt, value, "must be a non-empty identifier (letters, digits, _)")
    elif name == "oauth2_providers":
        _check_oauth2(opt, value, typing.cast(str, parsed))
    elif name == "shot_seconds_estimate":
        number = typing.cast(float, parsed)
        if not math.isfinite(number) or number < 0:
            raise _error(opt, value, "must be a finite number of seconds, 0 or more")
    elif name == "qpu_shot_seconds":
        _check_shot_seconds(opt, value, typing.cast(str, parsed))
    elif name in _RATE_FIELDS:
        try:
            parse_limit(typing.cast(str, parsed))
        except ValueError:
            raise _error(opt, value, "expected a rate such as `10 per 15 minutes`") from None
    elif name == "database_url":
        url = typing.cast(str, parsed)
        if url and not _URL_SCHEME.match(url):
            raise _error(opt, value, "expected a URL such as postgresql+psycopg://host/db")
    elif name in _NON_EMPTY and not typing.cast(str, parsed).strip():
        raise _error(opt, value, "must not be empty")
    return parsed


def _check_range(opt: OptionInfo, value: _Value, parsed: object, low: int, high: int) -> None:
    number = typing.cast(int, parsed)
    if not low <= number <= high:
        raise _error(opt, value, f"must be between {low} and {high}")


def _is_dns_name(name: str) -> bool:
    labels = name.split(".")
    if labels[0] == "*":
        # A wildcard domain is a legitimate certificate SAN.
        labels = labels[1:]
    return bool(labels) and all(_DNS_LABEL.fullmatch(label) for label in labels)


def _check_oauth2(opt: OptionInfo, value: _Value, text: str) -> None:
    try:
        parse_providers(text)
    except ProviderConfigError as exc:
        raise _error(opt, value, str(exc)) from None


def parse_shot_seconds(text: str) -> dict[str, float]:
    """The per-QPU seconds per shot of --qpu-shot-seconds (QPU name → seconds).

    Raises:
        ValueError: When the text is not a JSON object of finite, non-negative numbers.
    """
    if not text.strip():
        return {}
    decoded = json.loads(text)
    if not isinstance(decoded, dict):
        raise ValueError("must be a JSON object mapping QPU names to seconds per shot")
    result: dict[str, float] = {}
    for name, seconds in decoded.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"the value for {name!r} is not a number")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the value for {name!r} must be finite and 0 or more")
        result[str(name)] = float(seconds)
    return result


def _check_shot_seconds(opt: OptionInfo, value: _Value, text: str) -> None:
    try:
        parse_shot_seconds(text)
    except json.JSONDecodeError as exc:
        raise _error(opt, value, f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:
        raise _error(opt, value, str(exc)) from None


def _read_config_file(path: Path) -> dict[str, object]:
    """Reads a YAML (``.yml``/``.yaml``) or JSON file holding one mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() in {".yml", ".yaml"}:
            data = yaml.safe_load(text)
        else:
            # As in the original server, anything that is not .yml/.yaml is JSON.
            data = json.loads(text) if text.strip() else None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping of options at the top level")
    return {str(key): item for key, item in data.items()}


def _file_values(path: Path) -> dict[str, _Value]:
    """Maps a config file's keys to option names, rejecting unknown or duplicate keys."""
    by_key: dict[str, OptionInfo] = {}
    for opt in _OPTIONS:
        if opt.config_key is None:
            continue
        by_key[opt.config_key] = opt
        by_key[opt.name] = opt
    data = _read_config_file(path)
    unknown = sorted(key for key in data if key not in by_key)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in config file {path}: {', '.join(unknown)} "
            "(run `qpi serve --help` for the list of options)"
        )
    result: dict[str, _Value] = {}
    for key, raw in data.items():
        opt = by_key[key]
        if opt.name in result:
            raise ConfigError(
                f"config file {path} sets {opt.flag} twice "
                f"(keys {opt.config_key} and {opt.name}); keep one"
            )
        result[opt.name] = _Value(raw, "file", f"config file {path}, key {key}")
    return result


def _config_file_choice(
    cli: Mapping[str, object], env: Mapping[str, str]
) -> tuple[str, _Value | None]:
    """Returns the config file path and, if explicitly given, where it came from."""
    if cli.get("config_file") is not None:
        value = _Value(cli["config_file"], "flag", "command line")
    elif "QPI_CONFIG_FILE" in env:
        value = _Value(env["QPI_CONFIG_FILE"], "env", "env QPI_CONFIG_FILE")
    else:
        return DEFAULT_CONFIG_FILE, None
    if not isinstance(value.raw, str):
        raise _error(_BY_NAME["config_file"], value, "expected a path")
    return value.raw, value


def load_settings(
    cli: Mapping[str, object],
    env: Mapping[str, str],
    *,
    config_file_required: bool = False,
) -> ServerSettings:
    """Builds validated settings from flags, environment and the config file.

    Args:
        cli: Flag values keyed by field name (``{"grpc_port": "5"}``); values are normally
            strings and are converted like env values. ``None`` values count as not given.
        env: The environment (``os.environ``); only ``QPI_<FIELD>`` names are read and
            other variables are ignored.
        config_file_required: Treat a missing default config file as an error too.

    Returns:
        The settings. ``log_level`` is normalised to upper case and ``ip_addr`` to its
        canonical form.

    Raises:
        ConfigError: For an unknown flag, a bad value, a missing explicitly given (or
            required) config file, an unparsable file or unknown keys in it. The message
            names the option and its source.
    """
    unknown_flags = sorted(name for name in cli if name not in _BY_NAME)
    if unknown_flags:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown_flags)
        raise ConfigError(f"unknown option(s): {flags} (see `qpi serve --help`)")

    path_text, explicit = _config_file_choice(cli, env)
    file_values: dict[str, _Value] = {}
    # An empty path means "no config file at all", e.g. QPI_CONFIG_FILE="" in a container.
    if path_text.strip():
        path = Path(path_text).expanduser()
        if path.is_file():
            file_values = _file_values(path)
        elif path.exists():
            raise ConfigError(f"config file {path} is not a regular file")
        elif explicit is not None or config_file_required:
            origin = f" (from {explicit.detail})" if explicit is not None else ""
            raise ConfigError(f"config file {path} does not exist{origin}")
        else:
            logging.getLogger(__name__).debug("no config file at %s; using defaults", path)

    chosen: dict[str, tuple[object, _Value]] = {}
    for opt in _OPTIONS:
        value: _Value
        if cli.get(opt.name) is not None:
            value = _Value(cli[opt.name], "flag", "command line")
        elif opt.env in env:
            value = _Value(env[opt.env], "env", f"env {opt.env}")
        elif opt.name in file_values:
            value = file_values[opt.name]
        else:
            continue
        parsed = _check_field(opt, value, _coerce(opt, value))
        chosen[opt.name] = (parsed, value)

    kwargs = {name: parsed for name, (parsed, _) in chosen.items()}
    settings = ServerSettings(**kwargs)  # type: ignore[arg-type]
    _check_relations(settings, chosen)
    return settings


def _origin(name: str, chosen: Mapping[str, tuple[object, _Value]]) -> str:
    opt = _BY_NAME[name]
    if name in chosen:
        return _describe(opt, chosen[name][1])
    return f"{opt.flag} (default)"


def _check_relations(settings: ServerSettings, chosen: Mapping[str, tuple[object, _Value]]) -> None:
    """Checks constraints between options; the message names both and their sources."""

    def fail(first: str, second: str, relation: str, detail: str) -> ConfigError:
        return ConfigError(
            f"{_origin(first, chosen)} = {getattr(settings, first)!r} must be {relation} "
            f"{_origin(second, chosen)} = {getattr(settings, second)!r}: {detail}"
        )

    if settings.port_range_start >= settings.port_range_end:
        raise fail("port_range_start", "port_range_end", "less than", "the range would be empty")
    if settings.heartbeat_timeout <= settings.heartbeat_interval:
        raise fail(
            "heartbeat_timeout",
            "heartbeat_interval",
            "greater than",
            "every driver would time out between two heartbeats",
        )
    if settings.job_timeout <= settings.heartbeat_interval:
        raise fail(
            "job_timeout",
            "heartbeat_interval",
            "greater than",
            "job leases would expire between two heartbeats",
        )
    names: dict[str, str] = {}
    for name in _COLLECTION_FIELDS:
        collection = getattr(settings, name)
        if collection in names:
            raise fail(name, names[collection], "different from", "collection names must be unique")
        names[collection] = name
