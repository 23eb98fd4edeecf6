"""Competitors on a deal: one row per competitor name (case-insensitive), with where we stand."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import NotFound
from revops_core.outputs import Out
from revops_sales.models.deal_work import SalesCompetitor
from revops_sales.models.deals import SalesDeal


class CompetitorOut(Out):
    id: int = Field(description="Competitor row id.")
    name: str = Field(description="Competitor.")
    status: str = Field(description="active, won_against or lost_to.")
    notes: str | None = Field(description="Notes.")
    updated_at: datetime = Field(description="Last changed (UTC).")


def _find(session: Session, deal_id: int, name: str) -> SalesCompetitor | None:
    return session.exec(
        select(SalesCompetitor).where(
            SalesCompetitor.deal_id == deal_id, func.lower(SalesCompetitor.name) == name.strip().lower()
        )
    ).first()


def of_deal(session: Session, deal_id: int) -> list[CompetitorOut]:
    rows = session.exec(
        select(SalesCompetitor).where(SalesCompetitor.deal_id == deal_id).order_by(col(SalesCompetitor.id))
    )
    return [CompetitorOut.model_validate(r) for r in rows]


def set_competitor(
    session: Session, deal: SalesDeal, *, name: str, status: str, notes: str | None, at: datetime
) -> CompetitorOut:
    """Add the competitor, or update its status (and notes, when given)."""
    row = _find(session, deal.id or 0, name) or SalesCompetitor(deal_id=deal.id or 0, name=name.strip())
    row.status = status
    if notes is not None:
        row.notes = notes
    row.updated_at = at
    session.add(row)
    session.flush()
    return CompetitorOut.model_validate(row)


def remove(session: Session, deal: SalesDeal, name: str) -> None:
    row = _find(session, deal.id or 0, name)
    if row is None:
        raise NotFound(
            f"Deal {deal.id} has no competitor {name!r}.",
            field="competitor",
            hint="See the deal's competitors with get_deal.",
        )
    session.delete(row)
    session.flush()
