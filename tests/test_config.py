"""Settings come from CHATIO_* variables, are validated at boot, and a bad one names itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatio.config import ConfigError, Secret, Settings, describe, load_settings, variable_names

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_serve_a_laptop() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.message_max_length, settings.rate_limit_per_minute) == (1000, 60)
    assert settings.room_max_members == 1000
    assert settings.mongodb_uri is None and settings.redis_url is None
    assert settings.websocket_compression is False


def test_values_are_parsed_and_typed() -> None:
    settings = load_settings(
        {
            "CHATIO_PORT": "9000",
            "CHATIO_AUTO_CREATE_ROOMS": "false",
            "CHATIO_CORS_ORIGINS": "https://a.example, http://b.example",
            "CHATIO_TYPING_TIMEOUT_SECONDS": "2.5",
            "CHATIO_MONGODB_URI": "mongodb://db:27017/?replicaSet=rs0",
            "CHATIO_REDIS_URL": "",
        }
    )
    assert settings.port == 9000 and settings.auto_create_rooms is False
    assert settings.cors_origins == ("https://a.example", "http://b.example")
    assert settings.typing_timeout_seconds == 2.5
    assert isinstance(settings.mongodb_uri, Secret)
    assert settings.mongodb_uri.reveal().startswith("mongodb://db")
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CHATIO_PORT", "eighty", "CHATIO_PORT='eighty'"),
        ("CHATIO_PORT", "70000", "expected an integer from 0 to 65535"),
        ("CHATIO_AUTO_CREATE_ROOMS", "maybe", "expected true or false"),
        ("CHATIO_LOG_LEVEL", "LOUD", "expected one of DEBUG"),
        ("CHATIO_MESSAGE_MAX_LENGTH", "0", "CHATIO_MESSAGE_MAX_LENGTH"),
        ("CHATIO_CORS_ORIGINS", "example.com", "must be '*' or start with http"),
        ("CHATIO_MONGODB_URI", "postgres://x", "CHATIO_MONGODB_URI=<hidden>"),
        ("CHATIO_STATIC_DIR", "/does/not/exist", "is not a directory"),
        ("CHATIO_PROT", "8080", "CHATIO_PROT: unknown setting"),
        ("CHATIO_JWT_SECRET", "too-short", "CHATIO_JWT_SECRET=<hidden>: expected at least 32"),
        ("CHATIO_ALLOW_GUESTS", "sometimes", "expected true or false"),
        ("CHATIO_TRUSTED_PROXY_HOPS", "-1", "expected an integer from 0 to 10"),
        ("CHATIO_SLOW_CONSUMER_MAX_QUEUE", "1", "expected an integer from 10"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value})
    assert problem in str(error.value)


def test_secrets_never_print() -> None:
    settings = load_settings({"CHATIO_REDIS_URL": "redis://:hunter2@cache:6379/0"})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.redis_url)
    with pytest.raises(ConfigError) as error:
        load_settings({"CHATIO_REDIS_URL": "http://:hunter2@cache"})
    assert "hunter2" not in str(error.value)


def test_inconsistent_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="CHATIO_HISTORY_PAGE_SIZE"):
        load_settings({"CHATIO_HISTORY_PAGE_SIZE": "300", "CHATIO_HISTORY_MAX_PAGE": "100"})
    with pytest.raises(ConfigError, match="CHATIO_REFRESH_TOKEN_TTL_SECONDS"):
        load_settings({"CHATIO_ACCESS_TOKEN_TTL_SECONDS": "3600", "CHATIO_REFRESH_TOKEN_TTL_SECONDS": "600"})


def test_the_signing_key_never_prints() -> None:
    settings = load_settings({"CHATIO_JWT_SECRET": "x" * 31 + "hunter2"})
    assert settings.jwt_secret is not None and "hunter2" not in repr(settings)
    assert settings.allow_guests is True and settings.message_key is None  # the `make run` defaults


def test_every_field_has_a_variable_and_the_readme_lists_them_all() -> None:
    names = variable_names()
    assert set(names) == {field for field in Settings.__dataclass_fields__}
    readme = (ROOT / "README.md").read_text()
    missing = [row[0] for row in describe() if f"`{row[0]}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_bad_configuration_stops_the_process_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatio"],
        env={"CHATIO_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "CHATIO_PORT='not-a-port'" in result.stderr
