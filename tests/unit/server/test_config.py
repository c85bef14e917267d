"""Settings loading: precedence, type coercion, config files and validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qpi.server.config import ConfigError, load_settings, options
from qpi.server.settings import ServerSettings


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default config file name is relative to the working directory.
    monkeypatch.chdir(tmp_path)


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_input() -> None:
    assert load_settings({}, {}) == ServerSettings()


# --- precedence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    (
        "field",
        "file_value",
        "env_value",
        "flag_value",
        "expected_flag",
        "expected_env",
        "expected_file",
    ),
    [
        ("grpc_port", 6001, "6002", "6003", 6003, 6002, 6001),
        ("idle_threshold", "300s", "2m", "250ms", 0.25, 120.0, 300.0),
        ("insecure", True, "false", "true", True, False, True),
        ("event_rate_limit", 1.5, "2.5", "3.5", 3.5, 2.5, 1.5),
        (
            "jobs_collection",
            "from_file",
            "from_env",
            "from_flag",
            "from_flag",
            "from_env",
            "from_file",
        ),
        ("log_level", "warning", "error", "debug", "DEBUG", "ERROR", "WARNING"),
    ],
)
def test_flag_beats_env_beats_file_beats_default(
    tmp_path: Path,
    field: str,
    file_value: object,
    env_value: str,
    flag_value: str,
    expected_flag: object,
    expected_env: object,
    expected_file: object,
) -> None:
    opt = next(o for o in options() if o.name == field)
    config = tmp_path / "qpi.config.json"
    config.write_text(json.dumps({opt.config_key: file_value}))
    env = {"QPI_CONFIG_FILE": str(config), opt.env: env_value}

    assert getattr(load_settings({field: flag_value}, env), field) == expected_flag
    assert getattr(load_settings({}, env), field) == expected_env
    assert getattr(load_settings({}, {"QPI_CONFIG_FILE": str(config)}), field) == expected_file
    assert getattr(load_settings({}, {}), field) == getattr(ServerSettings(), field)


def test_none_flag_values_count_as_not_given() -> None:
    settings = load_settings({"grpc_port": None}, {"QPI_GRPC_PORT": "7001"})
    assert settings.grpc_port == 7001


def test_unrelated_environment_is_ignored() -> None:
    env = {"QPI_ACCESS_TOKEN": "x", "PATH": "/bin", "HOME": "/root"}
    assert load_settings({}, env) == ServerSettings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("True", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    assert load_settings({}, {"QPI_ALLOW_SIGNUP": text}).allow_signup is expected


def test_every_option_is_settable_by_env() -> None:
    # A valid non-default value for every kind of option proves the mapping is complete.
    samples = {"str": None, "int": "4242", "float": "7.5", "bool": "true", "duration": "42s"}
    for opt in options():
        value = samples[opt.kind]
        if value is None or opt.name.startswith("port_range") or opt.name.startswith("heartbeat"):
            continue
        settings = load_settings({}, {opt.env: value})
        assert getattr(settings, opt.name) != getattr(ServerSettings(), opt.name), opt.name


def test_options_cover_all_fields_except_reserved() -> None:
    names = {opt.name for opt in options()}
    assert names == set(ServerSettings.__dataclass_fields__) - {"extra"}
    for opt in options():
        assert opt.help, f"{opt.name} has no docstring in settings.py"


# --- config files -----------------------------------------------------------------------


def test_yaml_file_with_camel_and_snake_keys(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "conf.yaml",
        "serverPort: 9000\n"
        "idleThreshold: 300s\n"
        "jobsCollection: jobs\n"
        "timeslotsCollection: slots\n"
        "qpuTimeRequestsCollection: requests\n"
        "recovery_interval: 120\n"
        "disableEmailPasswordAuth: yes\n"
        "tlsCaCertFile: /var/qpi/ca.pem\n"
        "oauth2Providers:\n"
        "  - name: google\n"
        "    clientId: abc\n"
        "    issuer: https://accounts.google.com\n",
    )
    settings = load_settings({"config_file": str(config)}, {})
    assert settings.server_port == 9000
    assert settings.idle_threshold == 300.0
    assert settings.jobs_collection == "jobs"
    assert settings.timeslots_collection == "slots"
    assert settings.qpu_time_requests_collection == "requests"
    assert settings.recovery_interval == 120.0
    assert settings.disable_email_password_auth is True
    assert settings.tls_ca_cert_file == "/var/qpi/ca.pem"
    assert json.loads(settings.oauth2_providers) == [
        {"name": "google", "clientId": "abc", "issuer": "https://accounts.google.com"}
    ]
    assert settings.config_file == str(config)


def test_json_file(tmp_path: Path) -> None:
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({"grpcPort": "7000", "jobTimeout": "1m", "maxShots": 10}))
    settings = load_settings({}, {"QPI_CONFIG_FILE": str(config)})
    assert (settings.grpc_port, settings.job_timeout, settings.max_shots) == (7000, 60.0, 10)


def test_default_file_is_read_from_working_directory(tmp_path: Path) -> None:
    write_yaml(tmp_path / "qpi.config.yml", "serverPort: 9100\n")
    assert load_settings({}, {}).server_port == 9100


def test_missing_default_file_is_ignored_but_required_one_is_not() -> None:
    assert load_settings({}, {}) == ServerSettings()
    with pytest.raises(ConfigError, match=r"qpi\.config\.yml does not exist"):
        load_settings({}, {}, config_file_required=True)


@pytest.mark.parametrize("source", ["cli", "env"])
def test_missing_explicit_file_is_an_error(source: str) -> None:
    cli = {"config_file": "absent.yml"} if source == "cli" else {}
    env = {"QPI_CONFIG_FILE": "absent.yml"} if source == "env" else {}
    with pytest.raises(ConfigError, match=r"absent\.yml does not exist"):
        load_settings(cli, env)


def test_empty_config_file_path_disables_the_file(tmp_path: Path) -> None:
    write_yaml(tmp_path / "qpi.config.yml", "serverPort: 9100\n")
    assert load_settings({}, {"QPI_CONFIG_FILE": ""}).server_port == 8090


def test_empty_yaml_file_is_fine(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "empty.yml", "")
    assert load_settings({"config_file": str(config)}, {}).server_port == 8090


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yml", "serverPort: [1\n", "cannot parse config file"),
        ("bad.json", "{not json", "cannot parse config file"),
        ("list.yml", "- 1\n- 2\n", "must contain a mapping"),
        (
            "unknown.yml",
            "serverPort: 1\nfooBar: 1\ndriversCollection: d\n",
            "unknown key.*driversCollection, fooBar",
        ),
        ("dup.yml", "serverPort: 1\nserver_port: 2\n", "sets --server-port twice"),
        ("configfile.yml", "configFile: other.yml\n", "unknown key.*configFile"),
        ("dir.yml", None, "is not a regular file"),
    ],
)
def test_bad_config_files(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings({"config_file": str(path)}, {})


def test_file_value_errors_name_file_and_key(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "c.yml", "idleThreshold: soon\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"config_file": str(config)}, {})
    message = str(info.value)
    assert "--idle-threshold" in message
    assert "idleThreshold" in message
    assert str(config) in message
    assert "'soon'" in message


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("serverPort", True, "expected an integer"),
        ("serverPort", 1.5, "expected an integer"),
        ("domain", 5, "expected a string"),
        ("domain", None, "null"),
        ("insecure", "maybe", "expected a boolean"),
        ("jobTimeout", [1], "expected a duration"),
        ("eventRateLimit", "fast", "expected a number"),
    ],
)
def test_file_values_with_wrong_types(tmp_path: Path, key: str, value: object, reason: str) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({key: value}))
    with pytest.raises(ConfigError, match=reason):
        load_settings({"config_file": str(config)}, {})


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("server_port", "0", "between 1 and 65535"),
        ("server_port", "65536", "between 1 and 65535"),
        ("server_port", "http", "expected an integer"),
        ("server_port", "80.5", "expected an integer"),
        ("grpc_port", "-1", "between 0 and 65535"),
        ("port_range_start", "0", "between 1 and 65535"),
        ("port_range_end", "70000", "between 2 and 65536"),
        ("idle_threshold", "abc", "invalid duration"),
        ("idle_threshold", "-5s", "must not be negative"),
        ("recovery_interval", "0", "greater than 0"),
        ("job_timeout", "0s", "greater than 0"),
        ("dispatch_poll_interval", "0", "greater than 0"),
        ("heartbeat_interval", "0", "greater than 0"),
        ("heartbeat_timeout", "0", "greater than 0"),
        ("session_ttl", "0", "greater than 0"),
        ("events_prune_interval", "0", "greater than 0"),
        ("max_shots", "0", "greater than 0"),
        ("max_circuits", "-3", "greater than 0"),
        ("max_payload_bytes", "0", "greater than 0"),
        ("max_result_bytes", "lots", "expected an integer"),
        ("event_rate_limit", "nan", "expected a number"),
        ("event_rate_limit", "x", "expected a number"),
        ("insecure", "sure", "expected a boolean"),
        ("allow_signup", "", "expected a boolean"),
        ("log_level", "LOUD", "unknown log level"),
        ("ip_addr", "localhost", "not an IPv4 or IPv6 address"),
        ("domain", "bad_domain!", "not a valid DNS name"),
        ("jobs_collection", "", "identifier"),
        ("qpus_collection", "drop table", "identifier"),
        ("oauth2_providers", "{", "not valid JSON"),
        ("oauth2_providers", '{"name": "x"}', "must be a JSON array"),
        ("oauth2_providers", "[1]", "not a JSON object"),
        ("oauth2_providers", '[{"clientId": "x"}]', 'has no "name"'),
        ("oauth2_providers", '[{"name": "g", "issuer": "https://i.example"}]', "clientId"),
        ("oauth2_providers", '[{"name": "g", "clientId": "c"}]', "authURL, tokenURL"),
        ("oauth2_providers", '[{"name": "G!", "clientId": "c"}]', "lowercase letters"),
        (
            "oauth2_providers",
            '[{"name": "g", "clientId": "c", "issuer": "http://idp.example"}]',
            "must use https",
        ),
        (
            "oauth2_providers",
            '[{"name": "g", "clientId": "c", "issuer": "https://i.example", "clientSecrt": "s"}]',
            "unknown key",
        ),
        (
            "oauth2_providers",
            '[{"name": "g", "clientId": "c", "issuer": "https://i.example", "scopes": "a"},'
            ' {"name": "g", "clientId": "d", "issuer": "https://i.example"}]',
            "duplicate provider name",
        ),
        ("database_url", "qpi.db", "expected a URL"),
        ("data_dir", " ", "must not be empty"),
        ("tls_key_file", "", "must not be empty"),
    ],
)
@pytest.mark.parametrize("source", ["flag", "env"])
def test_bad_values_are_rejected_naming_option_and_source(
    field: str, value: str, reason: str, source: str
) -> None:
    opt = next(o for o in options() if o.name == field)
    cli = {field: value} if source == "flag" else {}
    env = {opt.env: value} if source == "env" else {}
    with pytest.raises(ConfigError, match=reason) as info:
        load_settings(cli, env)
    message = str(info.value)
    assert opt.flag in message
    assert repr(value) in message
    assert ("command line" if source == "flag" else f"env {opt.env}") in message


def test_error_message_format_for_env() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({}, {"QPI_IDLE_THRESHOLD": "abc"})
    assert str(info.value).startswith(
        "invalid value 'abc' for --idle-threshold (from env QPI_IDLE_THRESHOLD): "
    )


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (
            {"port_range_start": "7000", "port_range_end": "7000"},
            ["--port-range-start", "--port-range-end"],
        ),
        ({"port_range_start": "7001"}, ["--port-range-start", "--port-range-end (default)"]),
        ({"heartbeat_timeout": "2s"}, ["--heartbeat-timeout", "--heartbeat-interval"]),
        (
            {"heartbeat_interval": "30s", "heartbeat_timeout": "1m", "job_timeout": "30s"},
            ["--job-timeout", "--heartbeat-interval"],
        ),
        ({"jobs_collection": "qpus"}, ["--jobs-collection", "--qpus-collection"]),
    ],
)
def test_cross_field_constraints(values: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(values, {})
    for name in names:
        assert name in str(info.value)


def test_unknown_flags_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown option.*--no-such-thing"):
        load_settings({"no_such_thing": "1"}, {})
    with pytest.raises(ConfigError, match="unknown option.*--extra"):
        load_settings({"extra": "{}"}, {})


def test_normalisation() -> None:
    settings = load_settings(
        {"log_level": "warn", "ip_addr": "::FFFF:1.2.3.4", "domain": "QPI.example.org."}, {}
    )
    assert settings.log_level == "WARNING"
    assert settings.ip_addr == "::ffff:102:304"
    assert settings.domain == "QPI.example.org"


def test_valid_edge_values() -> None:
    settings = load_settings(
        {
            "grpc_port": "0",
            "server_port": "65535",
            "port_range_start": "65000",
            "port_range_end": "65536",
            "idle_threshold": "0",
            "events_retention": "0",
            "event_rate_limit": "-1",
            "oauth2_providers": '[{"name": "gh", "clientId": "c", "authURL": "https://a.example/auth",'
            ' "tokenURL": "https://a.example/token", "userInfoURL": "https://a.example/user"},'
            ' {"name": "local", "clientId": "c", "issuer": "http://127.0.0.1:5556/"}]',
            "database_url": "postgresql+psycopg://u@h/db",
            "domain": "*.example.org",
        },
        {},
    )
    assert settings.grpc_port == 0
    assert settings.idle_threshold == 0.0
    assert settings.event_rate_limit == -1.0
