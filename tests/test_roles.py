"""A viewer sees and can use every read tool of every server, and no write tool (one tier per tool)."""

from __future__ import annotations

from typing import Any

import pytest

from revops_core.audit import AuditEntry
from revops_core.settings import Settings
from revops_core.testing import connect, count_rows
from revops_suite.servers import SERVER_NAMES, factory

pytestmark = pytest.mark.anyio


def _minimal_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Smallest valid-looking value for each required parameter (the role check comes first)."""
    samples = {"integer": 1, "number": 1, "string": "x", "boolean": False, "array": [], "object": {}}
    out: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        kind = prop.get("type", "string")
        kind = kind[0] if isinstance(kind, list) else kind
        out[name] = prop["enum"][0] if prop.get("enum") else samples.get(kind, "x")
    return out


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_a_viewer_may_call_every_read_tool_and_no_write_tool(
    server_name: str, make_settings: Any
) -> None:
    admin_view = make_settings(toolsets=["all"])  # the default local role: admin, every tool
    settings: Settings = make_settings(role="viewer", toolsets=["all"])
    full = factory(server_name)(admin_view)
    try:
        async with connect(full, "legacy") as client:
            schemas = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
    finally:
        full.runtime.db.dispose()
    server = factory(server_name)(settings)
    tiers = {tool.name: tool.tier for tool in server.tools}
    codes: dict[str, str | None] = {}
    try:
        async with connect(server, "legacy") as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            # Every tool by name, listed or not: a hidden write must still be refused when called.
            for name, schema in schemas.items():
                result = await client.call_tool(name, _minimal_arguments(schema))
                codes[name] = (
                    (result.meta or {}).get("revops/error", {}).get("code") if result.is_error else None
                )
        audit_entries = count_rows(server.runtime.db, AuditEntry)
    finally:
        server.runtime.db.dispose()
    reads = {name for name, tier in tiers.items() if tier == "read"}
    writes = set(tiers) - reads
    assert reads, f"{server_name} has no read tools"
    assert set(schemas) == set(tiers)
    # tools/list shows a viewer exactly what it may call.
    assert listed == reads
    assert {name for name in reads if codes[name] == "permission_denied"} == set(), (
        "a viewer was refused a read"
    )
    # A write is refused before it runs: for its role, or (checked even earlier, by the SDK) for its
    # arguments; either way nothing is written.
    assert {
        name: codes[name] for name in writes if codes[name] not in ("permission_denied", "validation_error")
    } == {}
    if writes:  # (Marketing has no write tools yet)
        refused_for_role = {name for name in writes if codes[name] == "permission_denied"}
        assert refused_for_role, "no write was refused for its role"
    assert audit_entries == 0
