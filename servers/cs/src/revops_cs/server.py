"""The Customer Success server: its toolsets assembled by `build_server`."""

from __future__ import annotations

from revops_core.server import RevOpsServer, Toolset, build_server, load_tool_modules, server_info_toolset
from revops_core.settings import Settings

NAME = "cs"
DESCRIPTION = "Clients, health, onboarding, retention, support, expansion and feedback."
INSTRUCTIONS = (
    "RevOps Customer Success server. Every number comes from the stored client data; tools that "
    "change many records or send messages first return a plan — show it to the user and call again "
    "with confirm=<plan_id> only after they agree."
)


def toolsets() -> list[Toolset]:
    """Every CS toolset, after loading each module of `revops_cs.tools` (each registers its tools)."""
    from revops_cs import toolsets as declared

    load_tool_modules("revops_cs.tools")
    return [server_info_toolset(NAME, DESCRIPTION), *declared.ALL]


def create_server(settings: Settings, *, defer: bool = False) -> RevOpsServer:
    """The server; `defer=True` answers the handshake first and loads tools in the background."""
    return build_server(NAME, toolsets, settings=settings, instructions=INSTRUCTIONS, defer=defer)
