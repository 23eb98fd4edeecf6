"""Sales tools: pipeline metrics of a period."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Currency, SingleLine
from revops_core.server import Call
from revops_sales.params import OptPipeline
from revops_sales.services import metrics, waterfall
from revops_sales.toolsets import analytics as toolset


@toolset.tool(tier="read", title="Pipeline metrics")
def get_pipeline_metrics(
    call: Call,
    start: Annotated[date | None, Field(description="First day; default 89 days before end.")] = None,
    end: Annotated[date | None, Field(description="Last day; default today.")] = None,
    pipeline_id: OptPipeline = None,
    owner: Annotated[
        str | None, Field(min_length=1, max_length=200, description="One rep; omit for all."), SingleLine
    ] = None,
    currency: Currency = "USD",
) -> metrics.PipelineMetrics:
    """Win rate by count and value, median cycle, average deal and velocity for deals closed in a period."""
    return metrics.period_metrics(
        call.db, call.tenant, pipeline_id=pipeline_id, owner=owner, start=start, end=end, currency=currency
    )


@toolset.tool(tier="read", title="Pipeline waterfall")
def get_pipeline_waterfall(
    call: Call,
    start: Annotated[date | None, Field(description="First day; default 29 days before end.")] = None,
    end: Annotated[date | None, Field(description="Last day; default today.")] = None,
    pipeline_id: OptPipeline = None,
    currency: Currency = "USD",
) -> waterfall.WaterfallOut:
    """Open pipeline at the start, what was created, changed, won, lost and pushed out, and the end."""
    return waterfall.period_waterfall(
        call.db, call.tenant, pipeline_id=pipeline_id, start=start, end=end, currency=currency
    )
