"""Settings from the environment: sensible defaults, and a bad value names its variable."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from copilot.settings import SettingsError, load_settings

SECRET = "s" * 32
PG_URL = "postgresql://copilot:pw@db.internal:6543/incidents"


def env(var_dir: Path, **values: str) -> dict[str, str]:
    return {"COPILOT_VAR_DIR": str(var_dir), **values}


def test_the_defaults_are_embedded_sqlite_under_the_var_dir_on_the_documented_ports(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path / "var"))
    assert (settings.api_port, settings.ws_port) == (8580, 8505)
    assert settings.llm_model == "builtin"
    assert settings.embedded
    assert settings.sqlite_path == tmp_path / "var" / "copilot.db"
    assert settings.nats_url is None
    assert settings.log_level == "INFO"
    assert settings.cookie_secure is False
    assert settings.bind_host == "127.0.0.1"


def test_a_postgres_url_is_parsed_into_its_parts(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, COPILOT_DATABASE_URL=PG_URL, COPILOT_SECRET_KEY=SECRET,
                                 COPILOT_NATS_URL="nats://127.0.0.1:4222"))
    assert not settings.embedded
    pg = settings.postgres
    assert (pg.host, pg.port, pg.dbname, pg.user, pg.password) == (
        "db.internal", 6543, "incidents", "copilot", "pw")
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.encryption_key is None  # production brings its own key or stores no credentials
    with pytest.raises(SettingsError, match="COPILOT_DATABASE_URL"):
        _ = settings.sqlite_path


def test_explicit_values_override_the_defaults(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(bytes(range(32))).decode()
    settings = load_settings(env(
        tmp_path, COPILOT_API_PORT="9000", COPILOT_WS_PORT="9001", COPILOT_LLM_MODEL="openai/gpt-4o-mini",
        COPILOT_LOG_LEVEL="debug", COPILOT_ENCRYPTION_KEY=key, COPILOT_SECRET_KEY=SECRET))
    assert (settings.api_port, settings.ws_port) == (9000, 9001)
    assert settings.llm_model == "openai/gpt-4o-mini"
    assert settings.log_level == "DEBUG"
    assert settings.encryption_key == bytes(range(32))
    assert settings.secret_key == SECRET


@pytest.mark.parametrize(
    ("variable", "value", "extra"),
    [
        ("COPILOT_API_PORT", "abc", {}),
        ("COPILOT_API_PORT", "70000", {}),
        ("COPILOT_WS_PORT", "0", {}),
        ("COPILOT_WS_PORT", "-1", {}),
        ("COPILOT_DATABASE_URL", "mysql://root@localhost/copilot", {}),
        ("COPILOT_DATABASE_URL", "postgresql://root@localhost:5432/", {"COPILOT_SECRET_KEY": SECRET}),
        ("COPILOT_DATABASE_URL", "postgresql://root@localhost:port/db", {"COPILOT_SECRET_KEY": SECRET}),
        ("COPILOT_SECRET_KEY", "", {"COPILOT_DATABASE_URL": PG_URL}),
        ("COPILOT_SECRET_KEY", "too-short", {}),
        ("COPILOT_ENCRYPTION_KEY", base64.urlsafe_b64encode(b"sixteen byte key").decode(), {}),
        ("COPILOT_ENCRYPTION_KEY", "not base64 at all!!", {}),
        ("COPILOT_LOG_LEVEL", "verbose", {}),
        ("COPILOT_NATS_URL", "http://127.0.0.1:4222", {}),
        ("COPILOT_COOKIE_SECURE", "maybe", {}),
        ("COPILOT_RATE_LIMIT_PER_MINUTE", "0", {}),
        ("COPILOT_INVESTIGATOR_PARTITIONS", "0", {}),
        ("COPILOT_INVESTIGATOR_PARTITIONS", "65", {}),
        ("COPILOT_INVESTIGATOR_NICE", "20", {}),
        ("COPILOT_INVESTIGATOR_NICE", "-5", {}),
    ],
    ids=[
        "port-not-a-number", "port-out-of-range", "port-zero", "port-negative", "database-scheme",
        "postgres-without-database", "postgres-bad-port", "postgres-without-secret", "short-secret",
        "encryption-key-too-short", "encryption-key-garbage", "log-level", "nats-scheme", "cookie-flag",
        "rate-limit-zero", "investigator-partitions-zero", "investigator-partitions-too-many",
        "investigator-nice-too-high", "investigator-nice-negative",
    ],
)
def test_a_bad_value_raises_a_settings_error_naming_the_variable(
    tmp_path: Path, variable: str, value: str, extra: dict[str, str]
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, **{variable: value, **extra}))
    assert variable in str(raised.value)


def test_postgres_without_a_secret_key_does_not_fall_back_to_a_generated_one(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="COPILOT_SECRET_KEY is required"):
        load_settings(env(tmp_path / "var", COPILOT_DATABASE_URL=PG_URL))
    assert not (tmp_path / "var" / "secret_key").exists()


def test_embedded_mode_generates_a_secret_key_once_and_reuses_it(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    first = load_settings(env(var_dir))
    key_file = var_dir / "secret_key"
    assert key_file.read_text() == first.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # readable by the service user only

    second = load_settings(env(var_dir))
    assert second.secret_key == first.secret_key
    elsewhere = load_settings(env(tmp_path / "other"))
    assert elsewhere.secret_key != first.secret_key


def test_embedded_mode_generates_an_encryption_key_once_and_reuses_it(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    first = load_settings(env(var_dir))
    assert first.encryption_key is not None and len(first.encryption_key) == 32
    assert stat.S_IMODE((var_dir / "encryption_key").stat().st_mode) == 0o600
    assert load_settings(env(var_dir)).encryption_key == first.encryption_key
    assert load_settings(env(tmp_path / "other")).encryption_key != first.encryption_key


def test_an_explicit_secret_key_wins_over_the_generated_file(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    load_settings(env(var_dir))
    assert load_settings(env(var_dir, COPILOT_SECRET_KEY=SECRET)).secret_key == SECRET


@pytest.mark.parametrize("content", ["", "\n", "short"], ids=["empty", "blank", "short"])
def test_a_secret_key_file_too_short_to_sign_with_is_never_used(tmp_path: Path, content: str) -> None:
    # An empty file is what a crash between creating and writing the key leaves behind.
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    (var_dir / "secret_key").write_text(content)
    try:
        settings = load_settings(env(var_dir))
    except SettingsError as error:
        assert "secret_key" in str(error).lower()
    else:
        assert len(settings.secret_key) >= 32, f"signing tokens with {settings.secret_key!r}"
