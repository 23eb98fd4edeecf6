"""Won revenue by source and campaign over a period (what Marketing's attribution reads).

One grouped query over won deals closed in the period. A deal without a recorded source or
campaign is counted under "unrecorded" — dropping it would overstate every recorded source's share.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage

UNRECORDED = "unrecorded"


class SourceRevenue(Out):
    source: str = Field(description="Lead source; 'unrecorded' when none was recorded.")
    campaign: str = Field(description="Campaign; 'unrecorded' when none was recorded.")
    deals: int = Field(description="Won deals.")
    won_minor: int = Field(description="Won amount.")
    share: float | None = Field(description="won_minor ÷ total won in the period; null when nothing was won.")


class RevenueSources(Out):
    start: date = Field(description="First day (deals closed from here).")
    end: date = Field(description="Last day.")
    currency: str = Field(description="Currency.")
    deals: int = Field(description="Won deals in the period.")
    won_minor: int = Field(description="Won in the period.")
    unrecorded_minor: int = Field(description="Of which with no source recorded.")
    rows: list[SourceRevenue] = Field(description="Per source and campaign, largest first.")


def won_by_source(
    session: Session,
    tenant: str,
    *,
    start: date | None,
    end: date | None,
    currency: str,
) -> RevenueSources:
    period = DateRange.resolve(start, end, default_days=90, start_field="start", end_field="end")
    query = (
        select(SalesDeal.source, SalesDeal.campaign, func.count(), func.sum(SalesDeal.amount_minor))
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            SalesDeal.tenant == tenant,
            col(SalesDeal.deleted_at).is_(None),
            SalesDeal.currency == currency,
            SalesStage.kind == "won",
            col(SalesDeal.closed_at) >= period.since,
            col(SalesDeal.closed_at) < period.until,
        )
        .group_by(col(SalesDeal.source), col(SalesDeal.campaign))
    )
    grouped = [
        (source, campaign, int(n), int(total)) for source, campaign, n, total in session.exec(query).all()
    ]
    won = sum(total for *_, total in grouped)
    rows = [
        SourceRevenue(
            source=source or UNRECORDED,
            campaign=campaign or UNRECORDED,
            deals=n,
            won_minor=total,
            share=total / won if won else None,
        )
        for source, campaign, n, total in grouped
    ]
    rows.sort(key=lambda r: (-r.won_minor, r.source, r.campaign))
    return RevenueSources(
        start=period.start,
        end=period.end,
        currency=currency,
        deals=sum(n for _, _, n, _ in grouped),
        won_minor=won,
        unrecorded_minor=sum(total for source, _, _, total in grouped if not source),
        rows=rows,
    )
