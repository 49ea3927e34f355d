"""Settings read from the environment once, at start-up, and validated there."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import msgspec

__all__ = ["PostgresLocation", "Settings", "SettingsError", "load_settings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class PostgresLocation(msgspec.Struct, frozen=True):
    """Where the PostgreSQL event store lives, parsed from COPILOT_DATABASE_URL."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    @property
    def conninfo(self) -> str:
        """As libpq (psycopg) takes it."""
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} password={self.password}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of a copilot process."""

    database_url: str
    nats_url: str | None
    api_port: int
    ws_port: int
    secret_key: str
    encryption_key: bytes | None
    llm_model: str
    llm_api_base: str | None
    llm_api_key: str | None
    log_level: LogLevel
    cookie_secure: bool
    var_dir: Path
    rate_limit_per_minute: int
    login_attempts_per_window: int
    bind_host: str
    # Investigators on PostgreSQL share the incidents out by id, each taking one of this many
    # shares (an advisory lock per share); an investigator beyond that many stands by.
    investigator_partitions: int = 1
    # An investigator in a process of its own (`--role investigator`) runs at this nice value, so on
    # a machine it shares with the API, projector and relay they get the CPU first (all roles in one
    # process, investigations yield to requests instead: Investigator.step).
    investigator_nice: int = 10

    @property
    def embedded(self) -> bool:
        return not self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        if not self.embedded:
            raise SettingsError("COPILOT_DATABASE_URL points at PostgreSQL, not SQLite")
        raw = self.database_url.removeprefix("sqlite:///").removeprefix("sqlite://")
        return Path(raw)

    @property
    def postgres(self) -> PostgresLocation:
        parts = urlsplit(self.database_url)
        return PostgresLocation(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            dbname=unquote(parts.path.lstrip("/")) or "copilot",
            user=unquote(parts.username or "postgres"),
            # The eventsourcing library insists on a password even under trust auth.
            password=unquote(parts.password or "unused"),
        )


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise SettingsError(f"{name}={raw!r} is out of range 1-65535")
    return value


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole_number(env, name, default)
    if value <= 0:
        raise SettingsError(f"{name}={env[name]!r} must be greater than zero")
    return value


MAX_INVESTIGATOR_PARTITIONS = 64


def _investigator_partitions(env: Mapping[str, str]) -> int:
    value = _positive_int(env, "COPILOT_INVESTIGATOR_PARTITIONS", 1)
    if value > MAX_INVESTIGATOR_PARTITIONS:
        raise SettingsError(f"COPILOT_INVESTIGATOR_PARTITIONS={value} is more than {MAX_INVESTIGATOR_PARTITIONS}")
    return value


def _nice(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole_number(env, name, default)
    if not 0 <= value <= 19:
        raise SettingsError(f"{name}={env[name]!r} must be a nice value from 0 (as the others) to 19 (last)")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={raw!r} is not a boolean (use 1 or 0)")


def _database_url(env: Mapping[str, str], var_dir: Path) -> str:
    raw = env.get("COPILOT_DATABASE_URL", "").strip()
    if not raw:
        return f"sqlite:///{var_dir / 'copilot.db'}"
    if raw.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(raw)
        if not parts.path.strip("/"):
            raise SettingsError("COPILOT_DATABASE_URL must name a database: postgresql://user@host:5432/DBNAME")
        try:
            parts.port  # noqa: B018 - parsing the port is the validation
        except ValueError:
            raise SettingsError(f"COPILOT_DATABASE_URL has a bad port: {raw!r}") from None
        return raw
    if raw.startswith("sqlite://"):
        return raw
    raise SettingsError(
        f"COPILOT_DATABASE_URL={raw!r} is neither postgresql://… nor sqlite:///path"
    )


def _nats_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("COPILOT_NATS_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("nats://", "tls://")):
        raise SettingsError(f"COPILOT_NATS_URL={raw!r} must start with nats:// or tls://")
    return raw


def _secret_key(env: Mapping[str, str], var_dir: Path, embedded: bool) -> str:
    raw = env.get("COPILOT_SECRET_KEY", "")
    if raw:
        if len(raw) < 32:
            raise SettingsError("COPILOT_SECRET_KEY must be at least 32 characters")
        return raw
    if not embedded:
        raise SettingsError("COPILOT_SECRET_KEY is required when COPILOT_DATABASE_URL is PostgreSQL")
    # Embedded mode keeps one generated key so tokens survive a restart.
    path = var_dir / "secret_key"
    key = path.read_text().strip() if path.exists() else ""
    if not key:  # missing, or left empty by a crash while it was being written
        key = secrets.token_urlsafe(48)
        _write_private(path, key)
    if len(key) < 32:
        raise SettingsError(f"{path} holds a secret_key shorter than 32 characters; delete it to generate one")
    return key


def _write_private(path: Path, text: str) -> None:
    """Write a key file readable by its owner only, from its first byte, and atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _encryption_key(env: Mapping[str, str], var_dir: Path, embedded: bool) -> bytes | None:
    raw = env.get("COPILOT_ENCRYPTION_KEY", "").strip()
    if not raw and embedded:
        # Embedded mode keeps one generated key beside the database it protects.
        path = var_dir / "encryption_key"
        raw = path.read_text().strip() if path.exists() else ""
        if not raw:  # missing, or left empty by a crash while it was being written
            raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            _write_private(path, raw)
    if not raw:
        return None
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise SettingsError("COPILOT_ENCRYPTION_KEY must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise SettingsError(f"COPILOT_ENCRYPTION_KEY must decode to 32 bytes, not {len(key)}")
    return key


def _log_level(env: Mapping[str, str]) -> LogLevel:
    raw = env.get("COPILOT_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if raw not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"COPILOT_LOG_LEVEL={raw!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return raw  # type: ignore[return-value]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; raise SettingsError naming the bad variable."""
    env = os.environ if env is None else env
    var_dir = Path(env.get("COPILOT_VAR_DIR", "") or "var").absolute()
    database_url = _database_url(env, var_dir)
    embedded = not database_url.startswith(("postgresql://", "postgres://"))
    llm_model = env.get("COPILOT_LLM_MODEL", "").strip() or "builtin"
    return Settings(
        database_url=database_url,
        nats_url=_nats_url(env),
        api_port=_port(env, "COPILOT_API_PORT", 8580),
        ws_port=_port(env, "COPILOT_WS_PORT", 8505),
        secret_key=_secret_key(env, var_dir, embedded),
        encryption_key=_encryption_key(env, var_dir, embedded),
        llm_model=llm_model,
        llm_api_base=env.get("COPILOT_LLM_API_BASE", "").strip() or None,
        llm_api_key=env.get("COPILOT_LLM_API_KEY", "").strip() or None,
        log_level=_log_level(env),
        cookie_secure=_flag(env, "COPILOT_COOKIE_SECURE"),
        var_dir=var_dir,
        rate_limit_per_minute=_positive_int(env, "COPILOT_RATE_LIMIT_PER_MINUTE", 1200),
        login_attempts_per_window=_positive_int(env, "COPILOT_LOGIN_ATTEMPTS_PER_15MIN", 10),
        bind_host=env.get("COPILOT_BIND_HOST", "").strip() or "127.0.0.1",
        investigator_partitions=_investigator_partitions(env),
        investigator_nice=_nice(env, "COPILOT_INVESTIGATOR_NICE", 10),
    )
