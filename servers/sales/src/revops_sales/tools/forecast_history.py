"""Sales tools: forecast snapshots — store the forecast of a period, and what moved between two."""

from __future__ import annotations

from typing import Annotated

from revops_core.params import Id
from revops_core.server import Call
from revops_sales.params import OptCurrency, OptPipeline, OptRep, PeriodEnd, PeriodStart
from revops_sales.services import forecast_snapshots
from revops_sales.toolsets import forecasting as toolset


@toolset.tool(tier="write", idempotent=False, title="Save a forecast snapshot")
def save_forecast_snapshot(
    call: Call,
    start: PeriodStart = None,
    end: PeriodEnd = None,
    pipeline_id: OptPipeline = None,
    owner: OptRep = None,
    currency: OptCurrency = None,
) -> forecast_snapshots.SnapshotOut:
    """Store the period's forecast as of now, per deal: amount, stage, category, close date, p."""
    with call.reading() as read:
        saved = forecast_snapshots.take(
            read,
            call.db,
            call.tenant,
            call.actor,
            pipeline_id=pipeline_id,
            owner=owner,
            start=start,
            end=end,
            currency=currency,
        )
    call.target = f"sales_forecast_snapshot:{saved.id}"
    return saved


@toolset.tool(tier="read", title="Compare forecast snapshots")
def compare_forecast_snapshots(
    call: Call,
    snapshot_id: Annotated[int | None, Id("forecast snapshot", optional="omit for the latest")] = None,
    baseline_id: Annotated[
        int | None, Id("forecast snapshot", optional="omit for the one ~7 days earlier")
    ] = None,
) -> forecast_snapshots.SnapshotComparison:
    """What moved between two snapshots of a period: totals and each deal with the reason."""
    return forecast_snapshots.compare(call.db, call.tenant, snapshot_id=snapshot_id, baseline_id=baseline_id)
