"""Demo pipelines: new business on the standard stages, and a short renewals pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from revops_sales.demo import TENANT
from revops_sales.models.pipelines import SalesStage, StageKind
from revops_sales.services import pipelines

RENEWAL_STAGES: tuple[tuple[str, int, StageKind], ...] = (
    ("renewal due", 50, "open"),
    ("renewal negotiation", 75, "open"),
    ("renewed", 100, "won"),
    ("churned", 0, "lost"),
)


@dataclass(frozen=True)
class DemoPipeline:
    id: int
    share: float  # of the demo's deals
    open_stages: tuple[SalesStage, ...]
    won: SalesStage
    lost: SalesStage


def _stages(session: Session, pipeline_id: int) -> list[SalesStage]:
    query = select(SalesStage).where(SalesStage.pipeline_id == pipeline_id).order_by(col(SalesStage.position))
    return list(session.exec(query).all())


def _demo_pipeline(session: Session, pipeline_id: int, share: float) -> DemoPipeline:
    stages = _stages(session, pipeline_id)
    return DemoPipeline(
        id=pipeline_id,
        share=share,
        open_stages=tuple(s for s in stages if s.kind == "open"),
        won=next(s for s in stages if s.kind == "won"),
        lost=next(s for s in stages if s.kind == "lost"),
    )


def generate_pipelines(session: Session) -> list[DemoPipeline]:
    new_business = pipelines.create(session, TENANT, "New business", None)
    renewal_stages = [pipelines.StageIn(name=n, probability_pct=p, kind=k) for n, p, k in RENEWAL_STAGES]
    renewals = pipelines.create(session, TENANT, "Renewals", renewal_stages)
    return [_demo_pipeline(session, new_business.id, 0.85), _demo_pipeline(session, renewals.id, 0.15)]
