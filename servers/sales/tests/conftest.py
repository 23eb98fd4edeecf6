"""Sales test fixtures: the real Sales server on the current backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from revops_core.settings import Settings


@pytest.fixture
def sales_server(settings: Settings) -> Iterator[Any]:
    from revops_sales.server import create_server

    server = create_server(settings)
    try:
        yield server
    finally:
        server.runtime.db.dispose()
