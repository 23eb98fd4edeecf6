"""Settings precedence (env > config file > defaults) and start-up validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from revops_core.settings import Settings


def test_env_beats_config_file_beats_default(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('log_level = "WARNING"\nplan_ttl_seconds = 120\n')
    monkeypatch.setenv("REVOPS_CONFIG", str(config))
    monkeypatch.setenv("REVOPS_PLAN_TTL_SECONDS", "60")
    settings = Settings()
    assert settings.plan_ttl_seconds == 60  # env
    assert settings.log_level == "WARNING"  # file
    assert settings.approval_timeout_seconds == 120.0  # default


def test_toolsets_from_a_comma_separated_env_var(monkeypatch):
    monkeypatch.setenv("REVOPS_TOOLSETS", "clients, health")
    assert Settings().toolsets == ["clients", "health"]


def test_database_url_is_translated_for_psycopg(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h:5432/db")
    settings = Settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"
    assert not settings.is_embedded
    assert not settings.should_auto_migrate


def test_bad_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("REVOPS_HTTP_PORT", "99999")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "http_port" in str(info.value)


def test_master_key_is_not_printed(monkeypatch):
    monkeypatch.setenv("REVOPS_MASTER_KEY", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnl0ZXM=")
    settings = Settings()
    assert "c2VjcmV0" not in repr(settings)
    assert "c2VjcmV0" not in str(settings.model_dump())
