"""Every tool of every server meets the tool conventions, and each server's tools/list is pinned.

Regenerate the snapshots after an intended change with `REVOPS_UPDATE_SNAPSHOTS=1 make test`
and review the diff: the snapshot is the wire contract clients see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from revops_core.testing import connect
from revops_suite.servers import SERVER_NAMES, factory

pytestmark = pytest.mark.anyio
SNAPSHOTS = Path(__file__).parent / "snapshots"
# Budget for one server's tools/list JSON, so the whole list fits comfortably in an LLM's context.
TOOLS_LIST_BUDGET_CHARS = 60_000


async def _listed(name: str, settings: Any) -> tuple[Any, dict[str, str]]:
    """The tools/list result a client receives, and each tool's tier as registered."""
    server = factory(name)(settings)
    try:
        async with connect(server, "legacy") as client:
            listed = await client.list_tools()
    finally:
        server.runtime.db.dispose()
    return listed, {tool.name: tool.tier for tool in server.tools}


async def _tools(name: str, settings: Any) -> list[dict[str, Any]]:
    listed, _ = await _listed(name, settings)
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]


def _param_problems(tool: dict[str, Any]) -> list[str]:
    problems = []
    schema = tool["inputSchema"]
    for pname, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            problems.append(f"{tool['name']}.{pname}: parameter has no description")
    return problems


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_every_tool_follows_the_conventions(server_name, embedded_settings):
    listed, tiers = await _listed(server_name, embedded_settings)
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
    assert tools, f"{server_name} lists no tools"
    problems: list[str] = []
    for tool in tools:
        name = tool["name"]
        ann = tool.get("annotations", {})
        for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
            if hint not in ann:
                problems.append(f"{name}: annotation {hint} is not set")
        tier = tiers[name]
        if tier != "read" and ann.get("readOnlyHint"):
            problems.append(f"{name}: a {tier} tool claims readOnlyHint")
        if tier == "read" and not ann.get("readOnlyHint"):
            problems.append(f"{name}: a read tool does not say readOnlyHint")
        if tier in ("destructive", "critical") and not ann.get("destructiveHint"):
            problems.append(f"{name}: a {tier} tool does not say destructiveHint")
        if tier in ("destructive", "critical") and "confirm" not in tool["inputSchema"].get("properties", {}):
            problems.append(f"{name}: a {tier} tool has no confirm parameter (plan → confirm)")
        if not tool.get("description", "").strip():
            problems.append(f"{name}: no description")
        if "outputSchema" not in tool:
            problems.append(f"{name}: no outputSchema")
        if not name.replace("_", "").isalnum() or name.lower() != name:
            problems.append(f"{name}: not snake_case")
        problems.extend(_param_problems(tool))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_tools_list_fits_the_context_budget(server_name, embedded_settings):
    listed, _ = await _listed(server_name, embedded_settings)
    # Measured as it travels: the SDK serialises the result as compact JSON.
    size = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    assert size <= TOOLS_LIST_BUDGET_CHARS, f"{server_name} tools/list is {size} chars"


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_tools_list_matches_snapshot(server_name, embedded_settings):
    tools = await _tools(server_name, embedded_settings)
    rendered = json.dumps(tools, indent=2, sort_keys=True) + "\n"
    path = SNAPSHOTS / f"{server_name}.tools.json"
    if os.environ.get("REVOPS_UPDATE_SNAPSHOTS") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no snapshot for {server_name}: run with REVOPS_UPDATE_SNAPSHOTS=1 and review it"
    assert rendered == path.read_text(), (
        f"{server_name} tools/list changed; if intended, regenerate with REVOPS_UPDATE_SNAPSHOTS=1"
    )
