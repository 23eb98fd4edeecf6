"""CS toolset `communication`: emails, automations, newsletters, business reviews and advocacy."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset(
    "communication", "Emails, automated communications, newsletters, business reviews and advocacy."
)
