"""The `server_info` tool every server exposes: what runs, on what store, with which tools."""

from __future__ import annotations

import platform
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from revops_core.db import current_versions

if TYPE_CHECKING:
    from revops_core.server import Call, Toolset


class ServerInfo(BaseModel):
    server: str = Field(description="Server name.")
    version: str = Field(description="Package version.")
    python: str = Field(description="Python version running the server.")
    database: str = Field(description="Database dialect in use (sqlite or postgresql); never the URL.")
    schema_versions: dict[str, int] = Field(description="Migration version per component, as of start-up.")
    toolsets: list[str] = Field(description="Toolsets this server exposes in this session.")
    tool_count: int = Field(description="Number of tools listed.")
    read_only: bool = Field(description="True when the server only lists read tools.")
    role: str = Field(description="The caller's role.")
    audit_entries: int = Field(description="Entries ever appended (the chain tip's sequence).")
    uptime_seconds: float = Field(description="Seconds since the server started.")


def register_server_info(server_name: str, description: str, *, audit_query: bool = False) -> Toolset:
    from revops_core.server import Toolset

    meta = Toolset("meta", f"About this server. {description}")
    if audit_query:
        from revops_core.audit_query import register_audit_query

        register_audit_query(meta, server_name)

    @meta.tool(tier="read", title="Server information")
    def server_info(call: Call) -> ServerInfo:
        """Describe this server: version, database, schema, toolsets and tool count. Use to check set-up."""
        from importlib.metadata import version

        runtime = call.runtime
        server = runtime.state["server"]
        # The chain tip's sequence, one index read: this is the cheap liveness call clients poll,
        # and count(*) grew with the log (22 ms at 1 M entries). Sequences start at 1 with no gaps.
        from revops_core.audit import chain_tip

        audit_count, _ = chain_tip(call.db.connection())
        # Package metadata and the schema checked at start-up do not change while the server runs;
        # reading them once keeps this the cheap liveness call clients use it as.
        if "info_static" not in runtime.state:
            runtime.state["info_static"] = (version(f"revops-{server_name}"), current_versions(runtime.db))
        package_version, schema_versions = runtime.state["info_static"]
        return ServerInfo(
            server=server_name,
            version=package_version,
            python=platform.python_version(),
            database=runtime.db.dialect,
            schema_versions=schema_versions,
            toolsets=sorted({t.toolset for t in server.tools}),
            tool_count=len(server.tools),
            read_only=runtime.settings.read_only,
            role=call.role,
            audit_entries=int(audit_count),
            uptime_seconds=round(time.time() - runtime.started_at, 3),
        )

    return meta
