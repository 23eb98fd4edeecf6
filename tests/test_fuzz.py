"""Property-based fuzzing of every tool of every server, through the protocol.

For generated arguments, a tool either succeeds or fails with a structured error of a known code
(never `internal_error`, never a bare SDK error), and afterwards the database is still consistent:
SQLite integrity and foreign keys hold and the audit chain verifies. It runs on SQLite and on
PostgreSQL: bounds that SQLite never enforces (a 64-bit id into an INTEGER column) only show there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from schema_strategies import tool_arguments
from sqlalchemy import text

from revops_core.errors import ALL_CODES
from revops_core.settings import Settings
from revops_suite.servers import SERVER_NAMES, factory

EXAMPLES_PER_TOOL = int(os.environ.get("REVOPS_FUZZ_EXAMPLES", "12"))
# While working on some tools: REVOPS_FUZZ_TOOLS=get_ticket,list_tickets fuzzes only those.
ONLY_TOOLS = {name for name in os.environ.get("REVOPS_FUZZ_TOOLS", "").split(",") if name}


@pytest.fixture(params=SERVER_NAMES)
def live_server(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Any, Any, Any]]:
    """A server (every toolset, current backend) plus a connected client on a background loop."""
    from mcp import Client

    server = factory(request.param)(settings)
    with anyio.from_thread.start_blocking_portal() as portal:
        try:
            with portal.wrap_async_context_manager(Client(server.mcp, mode="legacy")) as client:
                yield server, client, portal
        finally:
            server.runtime.db.dispose()


def _assert_structured(tool: Any, args: dict[str, Any], result: Any) -> None:
    if not result.is_error:
        # The published (compact) output schema must accept every real result.
        jsonschema.validate(result.structured_content, tool.output_schema)
        return
    meta = result.meta or {}
    assert "revops/error" in meta, (
        f"{tool.name}({args!r}) failed without a structured error: {result.content}"
    )
    code = meta["revops/error"]["code"]
    assert code in ALL_CODES, f"{tool.name}: unknown error code {code}"
    assert code != "internal_error", f"{tool.name}({args!r}) crashed: {result.content[0].text}"


def _assert_database_consistent(server: Any) -> None:
    db = server.runtime.db
    if db.dialect == "sqlite":  # PostgreSQL enforces foreign keys on every statement
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    from revops_core import audit

    verify = getattr(audit, "verify", None)
    if verify is not None:
        report = verify(db)
        assert report.ok, f"audit chain broken after fuzzing: {report}"


def test_every_tool_survives_generated_arguments(live_server: tuple[Any, Any, Any]) -> None:
    server, client, portal = live_server
    tools = portal.call(client.list_tools).tools
    for tool in tools:
        if ONLY_TOOLS and tool.name not in ONLY_TOOLS:
            continue
        _fuzz_tool(tool, client, portal)
    _assert_database_consistent(server)


def _fuzz_tool(tool: Any, client: Any, portal: Any) -> None:
    @settings(
        max_examples=EXAMPLES_PER_TOOL,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(args=tool_arguments(tool.input_schema))
    def fuzz(args: dict[str, Any]) -> None:
        result = portal.call(client.call_tool, tool.name, args)
        _assert_structured(tool, args, result)

    fuzz()
