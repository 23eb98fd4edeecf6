"""Each console script starts over stdio and answers a real client (what Claude Desktop runs)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from revops_suite.servers import SERVER_NAMES, console_script

pytestmark = pytest.mark.anyio


def stdio_params(name: str, data_dir: Path, *args: str) -> StdioServerParameters:
    """Parameters that spawn the installed console script on an isolated embedded database."""
    script = shutil.which(console_script(name), path=str(Path(sys.executable).parent)) or console_script(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_") and k != "DATABASE_URL"}
    env.update({"REVOPS_DATA_DIR": str(data_dir), "REVOPS_ACTOR": "test:stdio"})
    return StdioServerParameters(command=script, args=list(args), env=env)


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_console_script_serves_over_stdio(server_name, tmp_path):
    async with Client(stdio_params(server_name, tmp_path / "data"), mode="legacy") as client:
        tools = await client.list_tools()
        assert "server_info" in [t.name for t in tools.tools]
        info = await client.call_tool("server_info", {})
    assert not info.is_error
    assert info.structured_content["server"] == server_name
    assert info.structured_content["database"] == "sqlite"


async def test_read_only_flag_hides_writing_tools(tmp_path):
    async with Client(stdio_params("cs", tmp_path / "data", "--read-only"), mode="legacy") as client:
        tools = (await client.list_tools()).tools
    assert tools
    assert all(t.annotations.read_only_hint for t in tools)


async def test_unknown_toolset_is_reported_to_the_client_with_a_hint(tmp_path):
    """stdio servers answer the handshake before loading tools (fast start in Claude Desktop), so a
    bad --toolsets reaches the client as an error naming the choices instead of a dead process."""
    from mcp import MCPError

    async with Client(stdio_params("cs", tmp_path / "data", "--toolsets", "nope"), mode="legacy") as client:
        with pytest.raises(MCPError) as info:
            await client.list_tools()
    assert "[validation_error] Unknown toolset(s): nope." in str(info.value)
    assert "Choose from:" in str(info.value)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_handshake_does_not_wait_for_tool_loading_but_calls_do(tmp_path, mode):
    async with Client(stdio_params("cs", tmp_path / "data"), mode=mode) as client:
        # The first call after the handshake waits for the loader, then sees every toolset.
        info = await client.call_tool("server_info", {})
    assert not info.is_error
    from revops_cs import toolsets

    expected = {ts.name for ts in toolsets.ALL if ts.default} | {"meta"}
    assert set(info.structured_content["toolsets"]) == expected
