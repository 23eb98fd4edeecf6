"""Historical win rate by stage (REFERENCE.md, Sales): over deals closed in a look-back window
that reached the stage, W/(W+L) smoothed toward the stage's configured probability; the configured
probability itself under 10 observations."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field
from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.outputs import Out
from revops_sales.analytics import forecast
from revops_sales.models.deals import SalesDeal, SalesStageMove
from revops_sales.models.pipelines import SalesStage

MIN_OBSERVATIONS = 10
PRIOR_WEIGHT = 10.0
"""Pseudo-observations at the configured probability that the observed rate is shrunk toward."""


class StageProbability(Out):
    stage_id: int = Field(description="Stage id.")
    stage: str = Field(description="Stage name.")
    configured_pct: int = Field(description="Configured probability, percent.")
    used: float = Field(description="Probability the forecast used, 0–1.")
    won: int = Field(description="Deals that reached the stage and were won in the look-back.")
    lost: int = Field(description="Deals that reached the stage and were lost in the look-back.")
    source: str = Field(description="history (smoothed) or configured (fewer than 10 observations).")


def by_stage(
    session: Session, tenant: str, stages: list[SalesStage], *, lookback_days: int
) -> list[StageProbability]:
    cutoff: datetime = utcnow() - timedelta(days=lookback_days)
    final = aliased(SalesStage)  # the stage a deal closed in (won or lost)
    counts = session.exec(
        select(SalesStageMove.to_stage_id, final.kind, func.count(func.distinct(SalesDeal.id)))
        .join(SalesDeal, col(SalesDeal.id) == col(SalesStageMove.deal_id))
        .join(final, col(final.id) == col(SalesDeal.stage_id))
        .where(
            col(SalesDeal.tenant) == tenant,
            col(SalesDeal.deleted_at).is_(None),
            col(final.kind).in_(("won", "lost")),
            col(SalesDeal.closed_at) >= cutoff,
        )
        .group_by(col(SalesStageMove.to_stage_id), col(final.kind))
    ).all()
    tally: dict[tuple[int, str], int] = {(stage_id, kind): int(n) for stage_id, kind, n in counts}
    out = []
    for stage in stages:
        won, lost = tally.get((stage.id or 0, "won"), 0), tally.get((stage.id or 0, "lost"), 0)
        default = stage.probability_pct / 100
        enough = won + lost >= MIN_OBSERVATIONS
        used = forecast.smoothed_win_rate(
            won, lost, default, prior_weight=PRIOR_WEIGHT, minimum=MIN_OBSERVATIONS
        )
        out.append(
            StageProbability(
                stage_id=stage.id or 0,
                stage=stage.name,
                configured_pct=stage.probability_pct,
                used=used,
                won=won,
                lost=lost,
                source="history" if enough else "configured",
            )
        )
    return out
