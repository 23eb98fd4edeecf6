"""Stalled and slipping open deals: stage durations and close-date moves read in SQL, judged in
`analytics.stalls`."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field
from sqlalchemy import func, type_coerce
from sqlmodel import Session, col, select

from revops_core.db import UTCDateTime
from revops_core.outputs import Out
from revops_core.params import start_of_day
from revops_sales.analytics import stalls
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services.deals import DealOut, deal_out


class DealAlert(Out):
    deal: DealOut = Field(description="The deal.")
    days_in_stage: float = Field(description="Days since it entered its current stage.")
    stage_median_days: float | None = Field(
        description="Median days in this stage over won deals; null if none."
    )
    stalled: list[str] = Field(description="Why it is stalled (empty if not).")
    slipping: list[str] = Field(description="Why it is slipping (empty if not).")
    not_evaluated: list[str] = Field(description="Rules that could not be applied, with the reason.")


class DealAlerts(Out):
    as_of: date = Field(description="Day judged.")
    open_deals: int = Field(description="Open deals examined.")
    alerts: list[DealAlert] = Field(description="Deals stalled or slipping, longest in stage first.")
    notes: list[str] = Field(description="What the rules leave out.")


def _won_stage_durations(session: Session, tenant: str, pipeline_id: int | None) -> list[tuple[int, float]]:
    """(stage id, days in it) for every stage a won deal passed through and left."""
    # type_coerce: a window function's result carries no column type, so SQLite's text timestamp
    # would come back as a string instead of an aware datetime.
    left_at = type_coerce(
        func.lead(SalesStageMove.at).over(
            partition_by=col(SalesStageMove.deal_id), order_by=col(SalesStageMove.id)
        ),
        UTCDateTime(),
    )
    moves = (
        select(SalesStageMove.to_stage_id, SalesStageMove.at, left_at.label("left_at"))
        .join(SalesDeal, col(SalesDeal.id) == col(SalesStageMove.deal_id))
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(SalesDeal.tenant == tenant, SalesStage.kind == "won", col(SalesDeal.deleted_at).is_(None))
    )
    if pipeline_id is not None:
        moves = moves.where(SalesDeal.pipeline_id == pipeline_id)
    rows = session.exec(moves).all()
    return [
        (stage, (left - entered).total_seconds() / 86_400)
        for stage, entered, left in rows
        if left is not None
    ]


def _pushes_since(session: Session, since: datetime) -> dict[int, int]:
    rows = session.exec(
        select(SalesDealChange.deal_id, SalesDealChange.old_value, SalesDealChange.new_value).where(
            SalesDealChange.field == "close_date", col(SalesDealChange.at) >= since
        )
    ).all()
    pushes: dict[int, int] = {}
    for deal_id, old, new in rows:
        if old is not None and new is not None and date.fromisoformat(new) > date.fromisoformat(old):
            pushes[deal_id] = pushes.get(deal_id, 0) + 1
    return pushes


def alerts(
    session: Session, tenant: str, *, pipeline_id: int | None, as_of: date, factor: float, limit: int
) -> DealAlerts:
    medians = stalls.median_days_by_stage(_won_stage_durations(session, tenant, pipeline_id))
    pushes = _pushes_since(session, start_of_day(stalls.quarter_start(as_of)))
    query = (
        select(SalesDeal, SalesStage)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(SalesDeal.tenant == tenant, SalesStage.kind == "open", col(SalesDeal.deleted_at).is_(None))
    )
    if pipeline_id is not None:
        query = query.where(SalesDeal.pipeline_id == pipeline_id)
    found: list[DealAlert] = []
    rows = session.exec(query).all()
    day_end = start_of_day(as_of)
    for deal, stage in rows:
        days = max(0.0, (day_end - deal.stage_entered_at).total_seconds() / 86_400)
        verdict = stalls.judge(
            days_in_stage=days,
            stage_median=medians.get(stage.id or 0),
            close_date=deal.close_date,
            pushed_this_quarter=pushes.get(deal.id or 0, 0),
            as_of=as_of,
            factor=factor,
        )
        if verdict.stalled or verdict.slipping:
            found.append(
                DealAlert(
                    deal=deal_out(deal, stage),
                    days_in_stage=round(days, 1),
                    stage_median_days=medians.get(stage.id or 0),
                    stalled=verdict.stalled,
                    slipping=verdict.slipping,
                    not_evaluated=verdict.not_evaluated,
                )
            )
    found.sort(key=lambda a: -a.days_in_stage)
    return DealAlerts(
        as_of=as_of,
        open_deals=len(rows),
        alerts=found[:limit],
        notes=["The no-activity rule is not applied: activities are not recorded by this server yet."],
    )
