"""The Marketing server: its toolsets assembled by `build_server`."""

from __future__ import annotations

from revops_core.server import RevOpsServer, Toolset, build_server, server_info_toolset
from revops_core.settings import Settings

NAME = "marketing"
DESCRIPTION = "Campaigns, attribution, budgets and email for a small marketing team."


def toolsets() -> list[Toolset]:
    return [server_info_toolset(NAME, DESCRIPTION)]


def create_server(settings: Settings, *, defer: bool = False) -> RevOpsServer:
    """The server; `defer=True` answers the handshake first and loads tools in the background."""
    return build_server(
        NAME, toolsets, settings=settings, instructions=f"RevOps Marketing server. {DESCRIPTION}", defer=defer
    )
