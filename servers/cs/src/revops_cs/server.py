"""The Customer Success server: its toolsets assembled by `build_server`."""

from __future__ import annotations

from revops_core.server import RevOpsServer, Toolset, build_server, server_info_toolset
from revops_core.settings import Settings

NAME = "cs"
DESCRIPTION = "Clients, health, onboarding, retention, support, expansion and feedback."
INSTRUCTIONS = (
    "RevOps Customer Success server. Every number comes from the stored client data; tools that "
    "change many records or send messages first return a plan — show it to the user and call again "
    "with confirm=<plan_id> only after they agree."
)


def toolsets() -> list[Toolset]:
    from revops_cs.tools import (
        clients,
        communication,
        expansion,
        feedback,
        health,
        onboarding,
        retention,
        reviews,  # adds business reviews and advocacy to the communication toolset
        support,
    )

    assert reviews.toolset is communication.toolset

    return [
        server_info_toolset(NAME, DESCRIPTION),
        clients.toolset,
        health.toolset,
        onboarding.toolset,
        retention.toolset,
        communication.toolset,
        support.toolset,
        expansion.toolset,
        feedback.toolset,
    ]


def create_server(settings: Settings, *, defer: bool = False) -> RevOpsServer:
    """The server; `defer=True` answers the handshake first and loads tools in the background."""
    return build_server(NAME, toolsets, settings=settings, instructions=INSTRUCTIONS, defer=defer)
