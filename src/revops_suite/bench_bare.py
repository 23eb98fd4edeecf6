"""The baseline for `make bench`: a bare MCP SDK server with one no-op tool, over stdio."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="bare")


@server.tool()
def noop() -> str:
    """Do nothing."""
    return "ok"


if __name__ == "__main__":
    server.run("stdio")
