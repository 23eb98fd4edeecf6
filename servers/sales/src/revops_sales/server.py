"""The Sales server: its toolsets assembled by `build_server`."""

from __future__ import annotations

from revops_core.server import RevOpsServer, Toolset, build_server, load_tool_modules, server_info_toolset
from revops_core.settings import Settings

NAME = "sales"
DESCRIPTION = "Pipeline, deals, forecasts and quotas for a small sales team."


def toolsets() -> list[Toolset]:
    """Every Sales toolset, after loading each module of `revops_sales.tools` (each registers its tools)."""
    from revops_sales import toolsets as declared

    load_tool_modules("revops_sales.tools")
    return [server_info_toolset(NAME, DESCRIPTION, audit_query=True), *declared.ALL]


def create_server(settings: Settings, *, defer: bool = False) -> RevOpsServer:
    """The server; `defer=True` answers the handshake first and loads tools in the background."""
    return build_server(
        NAME, toolsets, settings=settings, instructions=f"RevOps Sales server. {DESCRIPTION}", defer=defer
    )
