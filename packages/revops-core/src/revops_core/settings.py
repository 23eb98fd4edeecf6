"""One validated settings model for every server and the CLI.

Precedence: environment (`REVOPS_*`, plus the conventional `DATABASE_URL` / `REDIS_URL`) >
config file (TOML at `REVOPS_CONFIG`, else `<data dir>/config.toml`) > defaults.
A bad value fails at start-up with the variable's name, never half-way through a tool call.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Role = Literal["viewer", "member", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "member": 1, "admin": 2}


def default_data_dir() -> Path:
    """Where the embedded default keeps its SQLite file and key file (per-user, per-platform)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("revops-suite", appauthor=False))


def _split_commas(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _config_file() -> Path:
    explicit = os.environ.get("REVOPS_CONFIG")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("REVOPS_DATA_DIR")
    return (Path(data_dir) if data_dir else default_data_dir()) / "config.toml"


class Settings(BaseSettings):
    """Every knob of the suite. Domain defaults from REFERENCE.md live here, not in code."""

    model_config = SettingsConfigDict(env_prefix="REVOPS_", extra="ignore", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="Embedded-default data folder.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "REVOPS_DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded SQLite file in data_dir.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "REVOPS_REDIS_URL"),
        description="Redis URL for shared rate limits, breaker state and event wake-ups.",
    )
    master_key: SecretStr | None = Field(
        default=None, description="Base64 key-encryption key; unset means a 0600 key file in data_dir."
    )
    tenant: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Tenant name bound into every vault record and audit entry.",
    )
    role: Role = Field(default="admin", description="Role of the local stdio user.")
    actor: str = Field(
        default_factory=lambda: f"local:{os.environ.get('USER', 'user')}",
        description="Name the local stdio user is audited under.",
    )
    toolsets: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Comma-separated toolsets to expose, or `all` (default: each server's default toolsets).",
    )
    read_only: bool = Field(default=False, description="List only tools that change nothing.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the JSON logs on stderr."
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="Apply pending migrations at start-up (default: on for SQLite, off for PostgreSQL).",
    )
    http_host: str = Field(default="127.0.0.1", description="Bind address for --transport http.")
    http_port: int = Field(default=8000, ge=1, le=65535, description="Port for --transport http.")
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host names the HTTP server answers to besides loopback (comma-separated).",
    )

    db_busy_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a write waits for another write's lock before answering database_busy.",
    )

    # Guards
    plan_ttl_seconds: int = Field(
        default=900, ge=30, le=86_400, description="How long a plan may be confirmed after it is made."
    )
    approval_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds to wait for a person's approval; silence is a no."
    )
    bulk_approval_threshold: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Bulk deletes of more records than this also need a person's approval (revops approve).",
    )
    spend_cap_24h_minor: int = Field(
        default=500_000, ge=0, description="Rolling 24 h spend cap (minor units)."
    )
    spend_cap_campaign_minor: int = Field(
        default=200_000, ge=0, description="Spend cap per campaign (minor units)."
    )

    # Resilience
    http_timeout_seconds: float = Field(
        default=20.0, gt=0, le=300, description="Timeout of one vendor request."
    )
    http_deadline_seconds: float = Field(
        default=60.0, gt=0, le=900, description="Overall deadline of a vendor call including retries."
    )
    http_max_attempts: int = Field(default=4, ge=1, le=10, description="Attempts per retryable vendor call.")
    breaker_window_seconds: float = Field(default=60.0, gt=0, description="Failure-rate window of a breaker.")
    breaker_min_calls: int = Field(
        default=10, ge=1, description="Calls in the window before a breaker may open."
    )
    breaker_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Failure share in the window that opens the breaker."
    )
    breaker_open_seconds: float = Field(
        default=30.0, gt=0, description="How long an open breaker fails fast."
    )
    breaker_probe_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Lease of the single half-open probe; a hung probe frees it on expiry.",
    )

    # Audit
    audit_retention_days: int = Field(
        default=400,
        ge=30,
        description="Audit entries older than this are archived by `revops audit archive`.",
    )

    # Audit tail protection: signed checkpoints, published to witnesses outside the database
    audit_witness_dir: Path | None = Field(
        default=None,
        description="Folder (outside the data folder) of the append-only checkpoint witness file and "
        "the pinned public key; default: `<data_dir>-witness` beside the data folder.",
    )
    audit_public_key: str | None = Field(
        default=None,
        description="Base64 Ed25519 public key(s), comma-separated, that audit checkpoints must be "
        "signed with (`revops audit key` prints it); overrides the pinned key file.",
    )
    audit_public_key_file: Path | None = Field(
        default=None,
        description="Pinned checkpoint public key (PEM); default `audit-signing.pub` in "
        "audit_witness_dir, written by the first checkpoint.",
    )
    audit_witness_redis_url: str | None = Field(
        default=None, description="Also publish audit checkpoints to a Redis list at this URL."
    )
    audit_witness_database_url: str | None = Field(
        default=None,
        description="Also publish audit checkpoints to this second PostgreSQL database (never the main one).",
    )
    audit_witness_name: str = Field(
        default="revops",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Name of this log in the Redis and PostgreSQL witnesses (one per deployment).",
    )
    audit_checkpoint_every_entries: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="A running server checkpoints the audit log after this many new entries.",
    )
    audit_checkpoint_every_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="A running server checkpoints new audit entries at least this often (and at shutdown).",
    )

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _split_commas(value) or None
        return value

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return _split_commas(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql", "postgres://", "sqlite")):
            raise ValueError("DATABASE_URL must be a postgresql:// or sqlite:/// URL")
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
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    @property
    def is_embedded(self) -> bool:
        return self.database_url is None or self.database_url.startswith("sqlite")

    @property
    def sqlalchemy_url(self) -> str:
        """The URL handed to SQLAlchemy: psycopg 3 for PostgreSQL, a file in data_dir otherwise."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'revops.db'}"
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_embedded if self.auto_migrate is None else self.auto_migrate


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once. Tests build `Settings(...)` directly instead."""
    return Settings()
