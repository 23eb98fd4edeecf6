"""Exit criteria of stages, per deal: which a deal has met, which block a forward move, marking met.

A forward move (to a later open stage, or to the won stage) leaves the current stage and passes every
stage in between; each of their live criteria must be met for the deal first. Moving back or to
the lost stage is never blocked. A person may override with a reason: the unmet criteria are then
recorded as met *by override*, with that reason, so the history says who skipped what and why.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, ValidationFailed
from revops_core.outputs import Out
from revops_sales.models.deal_work import SalesCriterionMet
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage, SalesStageCriterion


class ChecklistItem(Out):
    id: int = Field(description="Criterion id.")
    text: str = Field(description="The criterion.")
    met: bool = Field(description="Met (or overridden) for this deal.")
    met_by: str | None = Field(description="Who marked it.")
    met_at: datetime | None = Field(description="When (UTC).")
    override_reason: str | None = Field(description="Set when a person moved on without meeting it.")


def _live(session: Session, stage_ids: list[int]) -> list[SalesStageCriterion]:
    if not stage_ids:
        return []
    return list(
        session.exec(
            select(SalesStageCriterion)
            .where(
                col(SalesStageCriterion.stage_id).in_(stage_ids),
                col(SalesStageCriterion.retired_at).is_(None),
            )
            .order_by(col(SalesStageCriterion.position), col(SalesStageCriterion.id))
        )
    )


def _met(session: Session, deal_id: int) -> dict[int, SalesCriterionMet]:
    rows = session.exec(select(SalesCriterionMet).where(SalesCriterionMet.deal_id == deal_id))
    return {row.criterion_id: row for row in rows}


def checklist(session: Session, deal_id: int, stage_id: int) -> list[ChecklistItem]:
    met = _met(session, deal_id)
    return [
        ChecklistItem(
            id=c.id or 0,
            text=c.text,
            met=(m := met.get(c.id or 0)) is not None,
            met_by=m.actor if m else None,
            met_at=m.at if m else None,
            override_reason=m.override_reason if m else None,
        )
        for c in _live(session, [stage_id])
    ]


def _passed(session: Session, deal: SalesDeal, current: SalesStage, target: SalesStage) -> list[int]:
    """Open stages a move leaves behind: the current one and every one skipped; none moving back."""
    if target.kind == "lost" or target.position <= current.position:
        return []
    rows = session.exec(
        select(SalesStage).where(
            SalesStage.pipeline_id == deal.pipeline_id,
            SalesStage.kind == "open",
            col(SalesStage.position) >= current.position,
            col(SalesStage.position) < target.position,
        )
    )
    return [row.id or 0 for row in rows]


def _record(
    session: Session, deal_id: int, criteria: list[int], actor: str, at: datetime, reason: str | None
) -> None:
    for criterion_id in criteria:
        session.add(
            SalesCriterionMet(
                deal_id=deal_id, criterion_id=criterion_id, actor=actor, at=at, override_reason=reason
            )
        )
    session.flush()


def check_move(
    session: Session,
    deal: SalesDeal,
    current: SalesStage,
    target: SalesStage,
    *,
    actor: str,
    at: datetime,
    override_reason: str | None,
) -> None:
    """Refuse a forward move past unmet criteria (Conflict naming them), or record the override."""
    met = _met(session, deal.id or 0)
    unmet = [c for c in _live(session, _passed(session, deal, current, target)) if c.id not in met]
    if not unmet:
        return
    if override_reason is None:
        names = "; ".join(f"{c.id}: {c.text}" for c in unmet)
        raise Conflict(
            f"Deal {deal.id} cannot move forward to {target.name!r}: exit criteria not met — {names}.",
            field="stage_id",
            hint="Mark them met with update_deal_work action=meet_criteria, or pass override_reason.",
            details={"unmet_criterion_ids": [c.id for c in unmet]},
        )
    _record(session, deal.id or 0, [c.id or 0 for c in unmet], actor, at, override_reason)


def meet(session: Session, deal: SalesDeal, criterion_ids: list[int], *, actor: str, at: datetime) -> int:
    """Mark criteria of the deal's pipeline met; already met ones are left as they are. Returns how
    many were newly marked."""
    stages = session.exec(select(SalesStage).where(SalesStage.pipeline_id == deal.pipeline_id))
    known = {c.id for c in _live(session, [s.id or 0 for s in stages])}
    foreign = [i for i in criterion_ids if i not in known]
    if foreign:
        raise ValidationFailed(
            f"Criteria {foreign} are not live exit criteria of deal {deal.id}'s pipeline.",
            field="criterion_ids",
            hint="See the stages' exit_criteria with list_pipelines.",
        )
    met = _met(session, deal.id or 0)
    new = [i for i in dict.fromkeys(criterion_ids) if i not in met]
    _record(session, deal.id or 0, new, actor, at, None)
    return len(new)
