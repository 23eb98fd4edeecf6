"""Stage-to-stage conversion from the stage-move history, in one grouped query (maths in
`analytics.conversion`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import case, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import conversion
from revops_sales.models.deals import SalesDeal, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import pipelines


class StageConversion(Out):
    stage_id: int = Field(description="Stage id.")
    stage: str = Field(description="Stage name.")
    entered: int = Field(description="Deals that first entered the stage in the period.")
    advanced: int = Field(description="Of those, reached a later open stage or won.")
    won: int = Field(description="Of those, won.")
    lost: int = Field(description="Of those, lost.")
    still_there: int = Field(description="Of those, still in this stage.")
    to_next: float | None = Field(description="advanced ÷ entered; null when none entered.")
    to_won: float | None = Field(description="won ÷ entered.")
    cumulative: float | None = Field(description="Product of to_next from the first stage to this one.")


class ConversionOut(Out):
    pipeline_id: int = Field(description="Pipeline.")
    start: date = Field(description="First day deals entered stages.")
    end: date = Field(description="Last day.")
    stages: list[StageConversion] = Field(description="Open stages in pipeline order.")
    notes: list[str] = Field(description="How it is counted.")


def stage_conversion(
    session: Session, tenant: str, *, pipeline_id: int, start: date | None, end: date | None
) -> ConversionOut:
    pipelines.get_pipeline(session, tenant, pipeline_id)
    period = DateRange.resolve(start, end, default_days=180, start_field="start", end_field="end")
    stages = pipelines.stages_of(session, pipeline_id)
    entered = (
        select(
            SalesStageMove.deal_id,
            SalesStageMove.to_stage_id.label("stage_id"),  # type: ignore[attr-defined]
            func.min(SalesStageMove.at).label("first_at"),
        )
        .group_by(col(SalesStageMove.deal_id), col(SalesStageMove.to_stage_id))
        .subquery()
    )
    reached_stage = aliased(SalesStage)
    furthest = (
        select(SalesStageMove.deal_id, func.max(reached_stage.position).label("position"))
        .join(reached_stage, col(reached_stage.id) == col(SalesStageMove.to_stage_id))
        .where(reached_stage.kind == "open")
        .group_by(col(SalesStageMove.deal_id))
        .subquery()
    )
    this, now = aliased(SalesStage), aliased(SalesStage)

    def tally(condition: object) -> object:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)  # type: ignore[arg-type]

    rows = session.exec(
        select(  # type: ignore[call-overload]
            entered.c.stage_id,
            func.count(),
            tally((furthest.c.position > this.position) | (now.kind == "won")),
            tally(now.kind == "won"),
            tally(now.kind == "lost"),
            tally(col(SalesDeal.stage_id) == entered.c.stage_id),
        )
        .select_from(entered)
        .join(this, col(this.id) == entered.c.stage_id)
        .join(SalesDeal, col(SalesDeal.id) == entered.c.deal_id)
        .join(now, col(now.id) == col(SalesDeal.stage_id))
        .join(furthest, furthest.c.deal_id == entered.c.deal_id)
        .where(
            col(SalesDeal.tenant) == tenant,
            col(SalesDeal.deleted_at).is_(None),
            col(SalesDeal.pipeline_id) == pipeline_id,
            this.kind == "open",
            entered.c.first_at >= period.since,
            entered.c.first_at < period.until,
        )
        .group_by(entered.c.stage_id)
    ).all()
    found = {int(r[0]): [int(v) for v in r[1:]] for r in rows}
    ordered = sorted((s for s in stages.values() if s.kind == "open"), key=lambda s: s.position)
    counts = [conversion.StageCounts(s.id or 0, *found.get(s.id or 0, [0, 0, 0, 0, 0])) for s in ordered]
    running = conversion.cumulative(counts)
    return ConversionOut(
        pipeline_id=pipeline_id,
        start=period.start,
        end=period.end,
        stages=[
            StageConversion(
                stage_id=c.stage_id,
                stage=s.name,
                entered=c.entered,
                advanced=c.advanced,
                won=c.won,
                lost=c.lost,
                still_there=c.still_there,
                to_next=conversion.rate(c.advanced, c.entered),
                to_won=conversion.rate(c.won, c.entered),
                cumulative=cum,
            )
            for c, s, cum in zip(counts, ordered, running, strict=True)
        ],
        notes=[
            "A deal counts once per stage it entered in the period; advanced = reached a later open "
            "stage or won. Deals still open stay in the denominator (see still_there); a stage nobody "
            "entered has no rate and is left out of the cumulative product."
        ],
    )
