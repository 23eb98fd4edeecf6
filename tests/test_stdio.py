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


def test_unknown_toolset_fails_at_start_with_a_hint(tmp_path):
    import subprocess

    params = stdio_params("cs", tmp_path / "data", "--toolsets", "nope")
    proc = subprocess.run(
        [params.command, *params.args],
        env=params.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "validation_error" in proc.stderr
    assert "Choose from" in proc.stderr
