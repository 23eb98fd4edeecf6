"""The pipeline waterfall of a period: each deal's history read in three set-based queries, the
replay in `analytics.waterfall`."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import waterfall
from revops_sales.analytics.waterfall import DealHistory, Event
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import pipelines


class WaterfallOut(Out):
    start: date = Field(description="First day of the period.")
    end: date = Field(description="Last day of the period.")
    currency: str = Field(description="Currency of every amount.")
    open_at_start_minor: int = Field(description="Open pipeline (close date ≤ end) when the period began.")
    created_minor: int = Field(description="Deals created in the period.")
    increased_minor: int = Field(description="Amounts raised.")
    decreased_minor: int = Field(description="Amounts lowered.")
    pulled_in_minor: int = Field(description="Close dates moved into the period (or set).")
    reopened_minor: int = Field(description="Closed deals opened again.")
    won_minor: int = Field(description="Won.")
    lost_minor: int = Field(description="Lost.")
    pushed_out_minor: int = Field(description="Close dates moved past the period's end (or cleared).")
    removed_minor: int = Field(description="Deals deleted.")
    open_at_end_minor: int = Field(description="Open pipeline at the end (or now, if the period is running).")
    advanced_moves: int = Field(description="Moves between open stages (no amount changes hands).")
    reconciles: bool = Field(description="start + inflows − outflows = end, to the minor unit.")


def _histories(session: Session, tenant: str, pipeline_id: int | None, currency: str) -> list[DealHistory]:
    deals_query = select(SalesDeal).where(SalesDeal.tenant == tenant, SalesDeal.currency == currency)
    if pipeline_id is not None:
        deals_query = deals_query.where(SalesDeal.pipeline_id == pipeline_id)
    deals = {d.id or 0: d for d in session.exec(deals_query).all()}
    kinds = {s.id or 0: s.kind for s in session.exec(select(SalesStage)).all()}
    ids = select(SalesDeal.id).where(SalesDeal.tenant == tenant, SalesDeal.currency == currency)
    if pipeline_id is not None:
        ids = ids.where(SalesDeal.pipeline_id == pipeline_id)
    moves = session.exec(
        select(SalesStageMove).where(col(SalesStageMove.deal_id).in_(ids)).order_by(col(SalesStageMove.id))
    ).all()
    changes = session.exec(
        select(SalesDealChange)
        .where(
            col(SalesDealChange.deal_id).in_(ids),
            col(SalesDealChange.field).in_(("amount_minor", "close_date")),
        )
        .order_by(col(SalesDealChange.id))
    ).all()
    first_move: dict[int, str] = {}
    events: dict[int, list[Event]] = {deal_id: [] for deal_id in deals}
    for move in moves:
        if move.deal_id not in first_move:
            first_move[move.deal_id] = kinds[move.to_stage_id]
        else:
            events[move.deal_id].append(Event(move.at, "stage", kinds[move.to_stage_id]))
    first_amount: dict[int, int] = {}
    first_close: dict[int, date | None] = {}
    for change in changes:
        if change.field == "amount_minor":
            first_amount.setdefault(change.deal_id, int(change.old_value or 0))
            events[change.deal_id].append(Event(change.at, "amount", int(change.new_value or 0)))
        else:
            old = date.fromisoformat(change.old_value) if change.old_value else None
            first_close.setdefault(change.deal_id, old)
            new = date.fromisoformat(change.new_value) if change.new_value else None
            events[change.deal_id].append(Event(change.at, "close_date", new))
    histories = []
    for deal_id, deal in deals.items():
        if deal.deleted_at is not None:
            events[deal_id].append(Event(deal.deleted_at, "removed"))
        histories.append(
            DealHistory(
                created_at=deal.created_at,
                amount=first_amount.get(deal_id, deal.amount_minor),
                close_date=first_close.get(deal_id, deal.close_date),
                status=first_move.get(deal_id, kinds[deal.stage_id]),
                events=events[deal_id],
            )
        )
    return histories


def period_waterfall(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    start: date | None,
    end: date | None,
    currency: str,
) -> WaterfallOut:
    if pipeline_id is not None:  # an unknown pipeline is not_found, not a page of zeros
        pipelines.get_pipeline(session, tenant, pipeline_id)
    period = DateRange.resolve(start, end, default_days=30, start_field="start", end_field="end")
    result = waterfall.replay(
        _histories(session, tenant, pipeline_id, currency),
        since=period.since,
        until=period.until,
        last_day=period.end,
    )
    flows = {f"{name}_minor": value for name, value in result.flows.items()}
    return WaterfallOut.model_validate(
        {
            "start": period.start,
            "end": period.end,
            "currency": currency,
            "open_at_start_minor": result.start,
            "open_at_end_minor": result.end,
            "advanced_moves": result.advanced,
            "reconciles": result.reconciles(),
            **flows,
        }
    )
