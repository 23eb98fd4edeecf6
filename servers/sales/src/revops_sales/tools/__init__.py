"""Sales tool modules (discovered by `server.toolsets()`); each registers on a toolset in `toolsets`."""
