"""Retention tools: churn risk from the explainable rules, and post-mortems of churned clients."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import AsOf, Count, resolve_as_of
from revops_core.server import Call
from revops_cs.models.clients import Tier
from revops_cs.params import OptClient, Top
from revops_cs.services import churn_risk, postmortems
from revops_cs.toolsets import retention as toolset


@toolset.tool(tier="read", title="Identify churn risk")
def identify_churn_risk(
    call: Call,
    client_id: OptClient = None,
    level: Annotated[churn_risk.Level | None, Field(description="Only clients at this level.")] = None,
    tier: Annotated[Tier | None, Field(description="Only this tier.")] = None,
    as_of: AsOf = None,
    limit: Top = 50,
) -> churn_risk.ChurnRiskResult:
    """Score churn risk with the explainable rules; every point awarded is listed with its evidence."""
    return churn_risk.ranked(
        call.db,
        call.tenant,
        client_id=client_id,
        tier=tier,
        level=level,
        day=resolve_as_of(as_of),
        limit=limit,
    )


@toolset.tool(tier="read", title="Churn post-mortem")
def analyze_churn_postmortem(
    call: Call,
    client_id: OptClient = None,
    since: Annotated[date | None, Field(description="Churned on/after.")] = None,
    months: Annotated[int, Count("Months before churn to show.", ge=1, le=24)] = 6,
    lead_days: Annotated[int, Count("Rules evaluated this long before churn.", ge=1, le=365)] = 30,
    limit: Top = 50,
) -> postmortems.PostmortemResult:
    """Churned clients' usage, tickets, NPS, payments and health in the months before churn."""
    return postmortems.analyse(
        call.db,
        call.tenant,
        client_id=client_id,
        since=since,
        months=months,
        lead_days=lead_days,
        limit=limit,
    )
