"""CS toolset `feedback`: the one-screen CS overview (clients, surveys, tickets, SLA, health)."""

from __future__ import annotations

from typing import Annotated

from revops_core.params import AsOf, Count, resolve_as_of
from revops_core.server import Call
from revops_cs.services import cs_overview
from revops_cs.services.cs_overview import CsOverview
from revops_cs.toolsets import feedback as toolset


@toolset.tool(tier="read", title="CS metrics overview")
def get_cs_metrics_overview(
    call: Call,
    as_of: AsOf = None,
    days: Annotated[int, Count("Look-back window in days.", ge=7, le=365)] = 90,
) -> CsOverview:
    """One-screen CS overview: clients by stage, NPS/CSAT/CES, open tickets, SLA compliance, health."""
    return cs_overview.overview(call.db, call.tenant, resolve_as_of(as_of), days)
