"""RevOps Suite — Customer Success MCP server."""
