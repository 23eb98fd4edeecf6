"""RevOps Suite — Marketing MCP server."""
