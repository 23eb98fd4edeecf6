"""Sales tools: deals, their stage moves and their history."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import (
    AsOf,
    Count,
    Currency,
    Cursor,
    Id,
    Limit,
    MinorUnits,
    SingleLine,
    Text,
    WholeNumber,
    resolve_as_of,
)
from revops_core.server import Call
from revops_sales.analytics.stalls import IDLE_DAYS, STALL_FACTOR
from revops_sales.params import DealId, OptPipeline, PipelineId, StageId
from revops_sales.services import deal_health, deals
from revops_sales.toolsets import deals as toolset

Owner = Annotated[
    str | None, Field(min_length=1, max_length=200, description="Rep who owns the deal."), SingleLine
]
Category = Literal["pipeline", "best_case", "most_likely", "commit", "omitted"]


@toolset.tool(tier="write", idempotent=False, title="Create a deal")
def create_deal(
    call: Call,
    pipeline_id: PipelineId,
    name: Annotated[str, Text("Deal name.")],
    amount_minor: MinorUnits,
    currency: Currency = "USD",
    stage_id: Annotated[
        int | None, Id("stage", see="list_pipelines", optional="omit for the first open stage")
    ] = None,
    owner: Owner = None,
    close_date: Annotated[date | None, Field(description="Expected close date.")] = None,
    company_id: Annotated[int | None, Id("company", optional="the shared company record")] = None,
    forecast_category: Annotated[
        Category | None, Field(description="Omit: the stage's default, else pipeline.")
    ] = None,
) -> deals.DealOut:
    """Create a deal in a pipeline; its first stage move is recorded."""
    created = deals.create(
        call.db,
        call.tenant,
        call.actor,
        pipeline_id=pipeline_id,
        name=name,
        amount_minor=amount_minor,
        currency=currency,
        stage_id=stage_id,
        owner=owner,
        close_date=close_date,
        company_id=company_id,
        forecast_category=forecast_category,
    )
    call.target = f"sales_deal:{created.id}"
    return created


@toolset.tool(tier="write", idempotent=True, title="Update a deal", target="sales_deal:{deal_id}")
def update_deal(
    call: Call,
    deal_id: DealId,
    name: Annotated[str | None, Text("New name.")] = None,
    amount_minor: Annotated[
        int | None, Field(ge=0, le=10**15, description="New amount, minor units."), WholeNumber
    ] = None,
    owner: Owner = None,
    close_date: Annotated[date | None, Field(description="New expected close date.")] = None,
    forecast_category: Annotated[Category | None, Field(description="New forecast category.")] = None,
) -> deals.DealOut:
    """Change a deal's name, amount, owner, close date or category (stages: move_deal_stage)."""
    changes = {
        "name": name,
        "amount_minor": amount_minor,
        "owner": owner,
        "close_date": close_date,
        "forecast_category": forecast_category,
    }
    return deals.update(call.db, call.tenant, call.actor, deal_id, changes=changes)


@toolset.tool(tier="write", idempotent=False, title="Move a deal to a stage", target="sales_deal:{deal_id}")
def move_deal_stage(
    call: Call,
    deal_id: DealId,
    stage_id: StageId,
    override_reason: Annotated[
        str | None, Text("Move forward past unmet exit criteria; recorded as the reason.", max_length=500)
    ] = None,
) -> deals.DealOut:
    """Move a deal to another stage (won/lost close it); forward moves need the exit criteria met."""
    return deals.move(call.db, call.tenant, call.actor, deal_id, stage_id, override_reason=override_reason)


@toolset.tool(tier="read", title="Get a deal")
def get_deal(call: Call, deal_id: DealId) -> deals.DealDetail:
    """One deal: stage history, line items, next step and open tasks, competitors, notes, checklist."""
    return deals.detail(call.db, call.tenant, deal_id)


@toolset.tool(tier="read", title="List deals")
def list_deals(
    call: Call,
    pipeline_id: OptPipeline = None,
    owner: Owner = None,
    status: Annotated[Literal["open", "won", "lost"] | None, Field(description="Only this state.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[deals.DealOut]:
    """Deals, oldest first, filtered by pipeline, owner and state."""
    return deals.page(
        call.db, call.tenant, pipeline_id=pipeline_id, owner=owner, status=status, limit=limit, cursor=cursor
    )


@toolset.tool(tier="read", title="Find stalled and slipping deals")
def find_stalled_deals(
    call: Call,
    pipeline_id: OptPipeline = None,
    as_of: AsOf = None,
    factor: Annotated[
        float, Field(gt=1, le=10, description="Stalled past this × the stage median.")
    ] = STALL_FACTOR,
    idle_days: Annotated[int, Count("Stalled after this many idle days.", ge=1, le=365)] = IDLE_DAYS,
    limit: Limit = 50,
) -> deal_health.DealAlerts:
    """Open deals stuck in a stage, untouched, or whose close date passed or moved out; with reasons."""
    return deal_health.alerts(
        call.db,
        call.tenant,
        pipeline_id=pipeline_id,
        as_of=resolve_as_of(as_of),
        factor=factor,
        limit=limit,
        idle_days=idle_days,
    )
