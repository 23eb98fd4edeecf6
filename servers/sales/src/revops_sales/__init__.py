"""RevOps Suite — Sales MCP server."""
