"""The one place that reads the environment: ``Settings`` from ``VIGIL_*`` variables and ``vigil.toml``.

Precedence, highest first: keyword arguments, environment variables, the TOML file, defaults.
The TOML file is ``$VIGIL_CONFIG`` when set, else ``./vigil.toml`` when it exists.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "VIGIL_"
Language = Literal["en", "zh_CN"]


class ConfigError(Exception):
    """A setting has a wrong value; the message names it and says how to fix it."""


def config_file_path() -> Path | None:
    """The settings file: ``$VIGIL_CONFIG`` (which must exist), else ``./vigil.toml`` when there is one."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"Vigil cannot start: {ENV_PREFIX}CONFIG names the settings file {path}, which does not exist "
                f"or is not a file. Fix the path, or unset {ENV_PREFIX}CONFIG to use ./vigil.toml or none."
            )
        return path
    default = Path("vigil.toml")
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    config: Path | None = Field(default=None, description="Path of the TOML settings file (VIGIL_CONFIG).")
    data_dir: Path = Field(default=Path("var"), description="Folder of the embedded stores.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the records store; default SQLite at <data_dir>/vigil.db.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for signed links; default a random key kept in <data_dir>/secret.key.",
    )
    host: str = Field(default="127.0.0.1", description="Address `vigil serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `vigil serve` listens on.")
    cookie_secure: bool = Field(default=True, description="Mark the session cookie Secure.")
    session_idle_minutes: int = Field(default=60, ge=5, le=24 * 60, description="Idle sign-out time.")
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30, description="Longest sign-in session.")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted request body in bytes."
    )
    ingest_max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024,
        description="Largest request body of the ingestion endpoints (/api/v1/ingest, _bulk) in bytes.",
    )
    default_language: Language = Field(default="en", description="UI language when nothing else decides.")
    timezone: str = Field(default="Asia/Shanghai", description="Time zone for display and reports.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a token (only behind a trusted network)."
    )
    # --- SIEM: receivers, spool, pipeline, retention -------------------------------------------------
    syslog_host: str = Field(default="0.0.0.0", description="Address the syslog receivers listen on.")  # noqa: S104
    syslog_udp_port: int = Field(default=5514, ge=0, le=65535, description="Syslog UDP port; 0 turns it off.")
    syslog_tcp_port: int = Field(default=5514, ge=0, le=65535, description="Syslog TCP port; 0 turns it off.")
    syslog_tls_port: int = Field(default=0, ge=0, le=65535,
                                 description="Syslog over TLS port (RFC 5425); 0 turns it off.")
    syslog_tls_cert: Path | None = Field(default=None, description="PEM certificate chain for syslog over TLS.")
    syslog_tls_key: Path | None = Field(default=None, description="PEM private key for syslog over TLS.")
    log_timezone: str = Field(
        default="Asia/Shanghai",
        description="Time zone of log timestamps that carry none (classic syslog), unless a source sets its own.",
    )
    keep_original: bool = Field(default=True, description="Keep each record as received in event.original.")
    spool_quota_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024,
                                   description="Disk quota of the spool; when full, receivers answer 503.")
    spool_segment_bytes: int = Field(default=64 * 1024**2, ge=64 * 1024, description="Size of one spool file.")
    events_memory_limit: str = Field(
        default="512MB",
        description="Most memory the event store (DuckDB) caches and works in; bigger sorts spill to disk.",
    )
    pipeline_workers: int = Field(
        default=2, ge=0, le=32,
        description="Processes that parse text logs (syslog, web, auth) beside the pipeline; 0 parses in it.",
    )
    retention_days: int = Field(
        default=180, ge=1, le=36500,
        description="Days events are kept unless a source sets its own (Cybersecurity Law Art. 21: >= 180).",
    )
    alert_dedup_minutes: int = Field(
        default=60, ge=0, le=10080,
        description="Matches of a rule with the same host, user and source IP within this many minutes of an "
                    "open alert raise its count instead of a new alert; 0 raises one alert per match.",
    )

    intel_lookback_days: int = Field(
        default=30, ge=0, le=3650,
        description="Days of stored events a retro-hunt looks back through when indicators arrive; 0: no retro-hunt.",
    )
    intel_warninglists: list[str] | None = Field(
        default=None,
        description="MISP warninglists applied to indicators (names); default every list of the false-positive "
                    "category.",
    )
    intel_pull_check_seconds: float = Field(
        default=30.0, ge=1.0, le=3600.0, description="How often `vigil serve` looks for feeds due to be pulled.",
    )
    evidence_max_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024, le=10 * 1024 ** 3,
        description="Largest evidence file an incident accepts, in bytes; a larger upload is refused and nothing "
                    "is kept.",
    )
    escalation_tick_seconds: float = Field(
        default=30.0, ge=1.0, le=600.0,
        description="How often `vigil serve` moves escalations whose acknowledgement timed out to the next level.",
    )
    public_url: str = Field(
        default="", max_length=500, pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$",
        description="Address users reach Vigil at (https://soc.example.com), for links in notifications; "
                    "empty: links are paths only.",
    )
    kb_git_path: Path | None = Field(
        default=None,
        description="Local git working copy the knowledge base publishes pages to as <slug>.md; with kb_git_remote "
                    "set, Vigil clones the remote here when the folder is missing or empty. Unset: no git wiki.",
    )
    kb_git_remote: str | None = Field(
        default=None,
        description="Repository URL or path pushed to after each commit (e.g. a Gitea or GitLab wiki, "
                    "https://git.example.com/soc/handbook.wiki.git). Unset: commit in kb_git_path only.",
    )
    kb_git_branch: str = Field(default="main", description="Branch of the git wiki that pages are committed to.")
    kb_git_folder: str = Field(
        default="",
        description="Folder inside the git wiki for pages; empty: the top, as Gitea and GitLab wikis keep them.",
    )
    kb_git_author_name: str = Field(default="Vigil", min_length=1, max_length=200,
                                    description="Author name of the git wiki's commits.")
    kb_git_author_email: str = Field(default="vigil@localhost", min_length=3, max_length=200,
                                     description="Author e-mail of the git wiki's commits.")
    kb_git_timeout_seconds: float = Field(
        default=60.0, ge=1.0, le=600.0, description="Longest a git command (clone, fetch, commit, push) may take.",
    )
    notify_retry_seconds: float = Field(
        default=2.0, ge=0.0, le=300.0,
        description="Wait before a failed notification is tried again; it doubles with each further attempt.",
    )
    notify_timeout_seconds: float = Field(
        default=10.0, ge=1.0, le=120.0, description="How long one attempt to deliver a notification may take.",
    )

    @field_validator("timezone", "log_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from exc
        return value

    @field_validator("kb_git_remote")
    @classmethod
    def _git_remote(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if value.strip().startswith("-") or any(ord(char) < 32 for char in value):
            raise ValueError("give a repository URL (https://..., ssh://..., git@host:path) or a path")
        return value.strip()

    @field_validator("kb_git_branch")
    @classmethod
    def _git_branch(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}", value) or ".." in value or value.endswith(
                (".lock", "/", ".")):
            raise ValueError("give a git branch name such as main or wiki/pages")
        return value

    @field_validator("kb_git_folder")
    @classmethod
    def _git_folder(cls, value: str) -> str:
        value = value.strip().strip("/")
        if value and (not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._/ -]{0,199}", value)
                      or any(part in ("", ".", "..", ".git") for part in value.split("/"))):
            raise ValueError("give a relative folder such as postmortems or docs/wiki (no .., no leading /)")
        return value

    @field_validator("events_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9]\d{0,5}(\.\d{1,3})?\s?[KMGT]i?B", value.strip()):
            raise ValueError("write a size such as 256MB, 512MB or 2GB")
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB")
        if value.startswith("postgresql:"):
            value = "postgresql+psycopg:" + value.removeprefix("postgresql:")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.duckdb"

    @property
    def intel_path(self) -> Path:
        return self.data_dir / "intel" / "indicators.duckdb"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vigil.db'}"

    def effective_secret_key(self) -> str:
        """The configured key, else one generated once and kept beside the stores."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, with secrets and URL passwords hidden."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif name == "database_url":
                shown[name] = mask_url_password(self.effective_database_url)
            elif name == "kb_git_remote" and value:
                shown[name] = mask_url_password(value)
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown


def mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':********' if has_password else ''}@{host}"


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["Vigil cannot start: a setting has a wrong value."]
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "?"
        if error["type"] == "extra_forbidden":  # only a settings file can name an unknown setting
            lines.append(f"  `{name}` in {config_file_path() or 'vigil.toml'}: not a Vigil setting; "
                         "check its spelling against `vigil config show`")
            continue
        lines.append(
            f"  {ENV_PREFIX}{name.upper()} (or `{name}` in vigil.toml): {error['msg']}"
            f" (got {error.get('input')!r})"
        )
    lines.append("Fix the environment variable or vigil.toml, then start again; `vigil config show` lists all.")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings or raise ``ConfigError`` with a message fit for an operator."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML file
        raise ConfigError(
            f"Vigil cannot read its settings file {config_file_path()}: {exc}. "
            "Fix the file (it is TOML: `name = value` lines, strings in quotes), then start again."
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
