"""Sales tools: stage conversion, the rep leaderboard, activity per rep, won revenue by source."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Count, Currency, SingleLine
from revops_core.server import Call
from revops_sales.params import PipelineId
from revops_sales.services import activity_metrics, conversion, leaderboard, revenue_sources
from revops_sales.toolsets import analytics as toolset

Start = Annotated[date | None, Field(description="First day.")]
End = Annotated[date | None, Field(description="Last day; default today.")]


@toolset.tool(tier="read", title="Stage-to-stage conversion")
def get_stage_conversion(
    call: Call, pipeline_id: PipelineId, start: Start = None, end: End = None
) -> conversion.ConversionOut:
    """Per open stage: deals entering it in a period (default 180 days) that advanced, won, lost."""
    return conversion.stage_conversion(call.db, call.tenant, pipeline_id=pipeline_id, start=start, end=end)


@toolset.tool(tier="read", title="Rep leaderboard")
def get_rep_leaderboard(
    call: Call,
    start: Start = None,
    end: End = None,
    currency: Currency = "USD",
    rank_by: Annotated[leaderboard.RankBy, Field(description="Ranking figure.")] = "won_minor",
    top: Annotated[int, Count("How many reps.", ge=1, le=200)] = 20,
) -> leaderboard.Leaderboard:
    """Reps ranked by won value, win rate, deals won or activities over a period (default 90 days)."""
    return leaderboard.leaderboard(
        call.db,
        call.tenant,
        start=start,
        end=end,
        currency=currency,
        rank_by=rank_by,
        top=top,
    )


@toolset.tool(tier="read", title="Activity per rep")
def get_activity_metrics(
    call: Call,
    start: Start = None,
    end: End = None,
    owner: Annotated[
        str | None, Field(min_length=1, max_length=200, description="One rep; omit for all."), SingleLine
    ] = None,
) -> activity_metrics.ActivityMetrics:
    """Activities per rep and kind over a period (default 30 days)."""
    return activity_metrics.per_rep(call.db, call.tenant, owner=owner, start=start, end=end)


@toolset.tool(tier="read", title="Won revenue by source")
def get_won_revenue_by_source(
    call: Call,
    start: Start = None,
    end: End = None,
    currency: Currency = "USD",
) -> revenue_sources.RevenueSources:
    """Won revenue per lead source and campaign over a period (default 90 days); null is 'unrecorded'."""
    return revenue_sources.won_by_source(call.db, call.tenant, start=start, end=end, currency=currency)
