"""Pipeline metrics of a period from the stored deals (maths in `analytics.metrics`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import metrics
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import pipelines


class PipelineMetrics(Out):
    start: date = Field(description="First day (deals closed from here).")
    end: date = Field(description="Last day.")
    currency: str = Field(description="Currency of the value figures.")
    won: int = Field(description="Deals won in the period.")
    lost: int = Field(description="Deals lost in the period.")
    won_minor: int = Field(description="Value won.")
    lost_minor: int = Field(description="Value lost.")
    win_rate_count: float | None = Field(
        description="won ÷ (won + lost) by count; null without closed deals."
    )
    win_rate_value: float | None = Field(description="Same by value.")
    average_won_minor: float | None = Field(description="Average won deal.")
    median_cycle_days: float | None = Field(description="Median days created → closed over won deals.")
    open_deals: int = Field(description="Open deals now.")
    velocity_minor_per_day: float | None = Field(
        description="(open deals × average won deal × win rate) ÷ median cycle days."
    )


def period_metrics(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    owner: str | None,
    start: date | None,
    end: date | None,
    currency: str,
) -> PipelineMetrics:
    if pipeline_id is not None:  # an unknown pipeline is not_found, not a page of zeros
        pipelines.get_pipeline(session, tenant, pipeline_id)
    period = DateRange.resolve(start, end, default_days=90, start_field="start", end_field="end")
    scope: list[ColumnElement[bool]] = [
        col(SalesDeal.tenant) == tenant,
        col(SalesDeal.deleted_at).is_(None),
        col(SalesDeal.currency) == currency,
    ]
    if pipeline_id is not None:
        scope.append(col(SalesDeal.pipeline_id) == pipeline_id)
    if owner is not None:
        scope.append(col(SalesDeal.owner) == owner)
    # Closed in the period and open now, by kind, in one aggregate over one scan.
    counted = session.exec(
        select(SalesStage.kind, func.count(), func.coalesce(func.sum(SalesDeal.amount_minor), 0))
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            *scope,
            or_(
                col(SalesStage.kind) == "open",
                and_(
                    col(SalesStage.kind).in_(("won", "lost")),
                    col(SalesDeal.closed_at) >= period.since,
                    col(SalesDeal.closed_at) < period.until,
                ),
            ),
        )
        .group_by(SalesStage.kind)
    ).all()
    tally = {kind: (int(n), int(value)) for kind, n, value in counted}
    (won, won_minor), (lost, lost_minor) = tally.get("won", (0, 0)), tally.get("lost", (0, 0))
    open_deals = tally.get("open", (0, 0))[0]
    cycles = session.exec(
        select(SalesDeal.created_at, SalesDeal.closed_at)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            *scope,
            SalesStage.kind == "won",
            col(SalesDeal.closed_at) >= period.since,
            col(SalesDeal.closed_at) < period.until,
        )
    ).all()
    cycle = metrics.median_cycle_days(
        [(closed_at - created).total_seconds() / 86_400 for created, closed_at in cycles if closed_at]
    )
    rate = metrics.win_rate(won, lost)
    average = metrics.ratio(won_minor, won)
    return PipelineMetrics(
        start=period.start,
        end=period.end,
        currency=currency,
        won=won,
        lost=lost,
        won_minor=won_minor,
        lost_minor=lost_minor,
        win_rate_count=rate,
        win_rate_value=metrics.win_rate(won_minor, lost_minor),
        average_won_minor=average,
        median_cycle_days=cycle,
        open_deals=open_deals,
        velocity_minor_per_day=metrics.velocity(open_deals, average, rate, cycle),
    )
