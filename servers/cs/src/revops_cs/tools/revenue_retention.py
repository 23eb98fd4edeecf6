"""Expansion tools: net and gross revenue retention, the MRR bridge and lifetime value."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Currency
from revops_core.server import Call
from revops_cs.models.clients import Tier
from revops_cs.services import revenue_retention
from revops_cs.toolsets import expansion as toolset


@toolset.tool(tier="read", title="Revenue retention")
def analyze_revenue_retention(
    call: Call,
    start_month: Annotated[date, Field(description="First day of the start month.")],
    end_month: Annotated[date, Field(description="First day of the end month.")],
    tier: Annotated[Tier | None, Field(description="Only this tier.")] = None,
    currency: Currency = "USD",
) -> revenue_retention.RetentionResult:
    """NRR, GRR, expansion/contraction/churn MRR from monthly MRR rows; annualised churn; LTV."""
    return revenue_retention.analyse(call.db, start_month, end_month, currency, tier)
