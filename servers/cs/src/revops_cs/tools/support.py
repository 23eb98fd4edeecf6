"""CS toolset `support`: Support tickets, routing, knowledge base and support performance."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("support", "Support tickets, routing, knowledge base and support performance.")
