"""The open pipeline by stage in one aggregate query: the stored facts a pipeline-review prompt cites."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from revops_core.outputs import Out
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesPipeline, SalesStage


class StageTotal(Out):
    pipeline: str = Field(description="Pipeline name.")
    stage: str = Field(description="Stage name.")
    probability_pct: int = Field(description="Configured win probability, percent.")
    deals: int = Field(description="Open deals in the stage.")
    amount_minor: int = Field(description="Their total amount in minor units.")
    currency: str = Field(description="ISO 4217 currency of the total (one row per currency).")


def open_pipeline(session: Session, tenant: str) -> list[StageTotal]:
    """Open, live deals grouped by pipeline, stage and currency, in pipeline and stage order."""
    rows = session.execute(
        sa_select(
            col(SalesPipeline.name),
            col(SalesStage.name),
            col(SalesStage.probability_pct),
            func.count(col(SalesDeal.id)),
            func.coalesce(func.sum(col(SalesDeal.amount_minor)), 0),
            col(SalesDeal.currency),
        )
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .join(SalesPipeline, col(SalesPipeline.id) == col(SalesDeal.pipeline_id))
        .where(
            col(SalesDeal.tenant) == tenant,
            col(SalesStage.kind) == "open",
            col(SalesDeal.deleted_at).is_(None),
        )
        .group_by(
            col(SalesPipeline.id),
            col(SalesPipeline.name),
            col(SalesStage.id),
            col(SalesStage.name),
            col(SalesStage.position),
            col(SalesStage.probability_pct),
            col(SalesDeal.currency),
        )
        .order_by(col(SalesPipeline.id), col(SalesStage.position), col(SalesDeal.currency))
    ).all()
    return [
        StageTotal(
            pipeline=pipeline,
            stage=stage,
            probability_pct=probability,
            deals=int(count),
            amount_minor=int(amount),
            currency=currency,
        )
        for pipeline, stage, probability, count, amount, currency in rows
    ]
