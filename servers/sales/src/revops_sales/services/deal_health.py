"""Stalled and slipping open deals: stage durations and close-date moves read in SQL, judged in
`analytics.stalls`."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field
from sqlalchemy import func, type_coerce
from sqlmodel import Session, col, select

from revops_core.db import UTCDateTime, utcnow
from revops_core.outputs import Out
from revops_core.params import end_of_day, start_of_day
from revops_sales.analytics import stalls
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services.deals import DealOut, deal_out


class DealAlert(Out):
    deal: DealOut = Field(description="The deal.")
    days_in_stage: float = Field(description="Days since it entered its current stage.")
    stage_median_days: float | None = Field(
        description="Median days in this stage over won deals; null under the minimum sample."
    )
    stage_sample: int = Field(description="Won deals that left this stage (the median's sample).")
    last_activity_at: datetime | None = Field(description="Latest logged activity; null if none.")
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


def _pushes(session: Session, tenant: str, since: datetime, until: datetime) -> dict[int, list[stalls.Push]]:
    """Close dates moved later in [since, until), per deal, oldest first."""
    rows = session.exec(
        select(SalesDealChange.deal_id, SalesDealChange.old_value, SalesDealChange.new_value)
        .join(SalesDeal, col(SalesDeal.id) == col(SalesDealChange.deal_id))
        .where(
            SalesDeal.tenant == tenant,
            SalesDealChange.field == "close_date",
            col(SalesDealChange.at) >= since,
            col(SalesDealChange.at) < until,
        )
        .order_by(col(SalesDealChange.id))
    ).all()
    pushes: dict[int, list[stalls.Push]] = {}
    for deal_id, old, new in rows:
        if old is not None and new is not None and date.fromisoformat(new) > date.fromisoformat(old):
            pushes.setdefault(deal_id, []).append(
                stalls.Push(date.fromisoformat(old), date.fromisoformat(new))
            )
    return pushes


def _last_activity(session: Session, tenant: str, until: datetime) -> dict[int, datetime]:
    """Latest logged activity before `until` per deal (one grouped query)."""
    latest = type_coerce(func.max(SalesActivity.occurred_at), UTCDateTime())
    rows = session.exec(
        select(SalesActivity.deal_id, latest)
        .where(
            SalesActivity.tenant == tenant,
            col(SalesActivity.deal_id).is_not(None),
            col(SalesActivity.occurred_at) < until,
        )
        .group_by(col(SalesActivity.deal_id))
    ).all()
    return {deal_id: at for deal_id, at in rows if deal_id is not None}


def alerts(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    as_of: date,
    factor: float,
    limit: int,
    idle_days: int = stalls.IDLE_DAYS,
) -> DealAlerts:
    # Judged at the end of the as-of day, or now when that is today.
    moment = min(utcnow(), end_of_day(as_of))
    durations = _won_stage_durations(session, tenant, pipeline_id)
    medians = stalls.median_days_by_stage(durations)
    samples = stalls.sample_sizes(durations)
    pushes = _pushes(session, tenant, start_of_day(stalls.quarter_start(as_of)), moment)
    touched = _last_activity(session, tenant, moment)
    query = (
        select(SalesDeal, SalesStage)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(SalesDeal.tenant == tenant, SalesStage.kind == "open", col(SalesDeal.deleted_at).is_(None))
    )
    if pipeline_id is not None:
        query = query.where(SalesDeal.pipeline_id == pipeline_id)
    found: list[DealAlert] = []
    rows = session.exec(query).all()
    for deal, stage in rows:
        days = max(0.0, (moment - deal.stage_entered_at).total_seconds() / 86_400)
        last = touched.get(deal.id or 0)
        since = last or deal.created_at
        sample = samples.get(stage.id or 0, 0)
        median = medians.get(stage.id or 0) if sample >= stalls.MIN_STAGE_SAMPLE else None
        verdict = stalls.judge(
            days_in_stage=days,
            stage_median=medians.get(stage.id or 0),
            stage_sample=sample,
            close_date=deal.close_date,
            pushes=pushes.get(deal.id or 0, []),
            days_idle=max(0.0, (moment - since).total_seconds() / 86_400),
            idle_since="the last logged activity" if last else "the deal was created (no activity logged)",
            as_of=as_of,
            factor=factor,
            idle_days=idle_days,
        )
        if verdict.stalled or verdict.slipping:
            found.append(
                DealAlert(
                    deal=deal_out(deal, stage),
                    days_in_stage=round(days, 1),
                    stage_median_days=median,
                    stage_sample=sample,
                    last_activity_at=last,
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
        notes=[
            "Days in stage and activity are measured at the end of the as-of day (now, for today) from the"
            " deals' current stages.",
            f"A stage's median needs {stalls.MIN_STAGE_SAMPLE} won deals that left it; under that the rule"
            " is listed in not_evaluated.",
        ],
    )
