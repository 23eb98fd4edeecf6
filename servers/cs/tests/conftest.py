"""CS test fixtures: the real CS server on the current backend, and row factories."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from revops_core.settings import Settings


@pytest.fixture
def cs_server(settings: Settings) -> Iterator[Any]:
    from revops_cs.server import create_server

    server = create_server(settings)
    try:
        yield server
    finally:
        server.runtime.db.dispose()
