"""Expansion tools: upsell and cross-sell signals, each with the numbers behind it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, resolve_as_of
from revops_core.server import Call
from revops_cs.params import OptClient, Top
from revops_cs.services import expansion
from revops_cs.toolsets import expansion as toolset


@toolset.tool(tier="read", title="Upsell opportunities")
def identify_upsell_opportunities(
    call: Call,
    client_id: OptClient = None,
    motion: Annotated[Literal["upsell", "cross_sell"] | None, Field(description="Only this motion.")] = None,
    as_of: AsOf = None,
    limit: Top = 50,
) -> expansion.UpsellResult:
    """Upsell/cross-sell signals: seat use, usage growth, plan limits, healthy promoter, renewal timing."""
    return expansion.opportunities(
        call.db, call.tenant, client_id=client_id, motion=motion, day=resolve_as_of(as_of), limit=limit
    )
