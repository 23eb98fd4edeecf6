"""Suite-wide fixtures: every server built on an isolated embedded database."""

from __future__ import annotations

from pathlib import Path

import pytest

from revops_core.settings import Settings


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=None, redis_url=None, master_key=None, actor="test:suite"
    )
