"""The pipeline waterfall of a period: each deal's history read in three set-based queries, the
replay in `analytics.waterfall`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import exists, or_
from sqlalchemy import select as sa_select
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


def _relevant_deals(
    tenant: str, pipeline_id: int | None, currency: str, since: datetime, until: datetime
) -> Any:
    """SQL: the deals whose history can touch the period. A deal created after it, archived before
    it, or closed before it and never moved again contributes nothing (closed deals are out of the
    pipeline), so two years of closed history is not read to draw one month's waterfall."""
    moved_since = exists().where(
        col(SalesStageMove.deal_id) == col(SalesDeal.id), col(SalesStageMove.at) >= since
    )
    query = select(SalesDeal.id).where(
        col(SalesDeal.tenant) == tenant,
        col(SalesDeal.currency) == currency,
        col(SalesDeal.created_at) < until,
        or_(col(SalesDeal.deleted_at).is_(None), col(SalesDeal.deleted_at) >= since),
        or_(col(SalesDeal.closed_at).is_(None), col(SalesDeal.closed_at) >= since, moved_since),
    )
    if pipeline_id is not None:
        query = query.where(col(SalesDeal.pipeline_id) == pipeline_id)
    return query


def _histories(
    session: Session, tenant: str, pipeline_id: int | None, currency: str, since: datetime, until: datetime
) -> list[DealHistory]:
    ids = _relevant_deals(tenant, pipeline_id, currency, since, until)
    deals = {
        row[0]: row
        for row in session.execute(
            sa_select(
                col(SalesDeal.id),
                col(SalesDeal.created_at),
                col(SalesDeal.amount_minor),
                col(SalesDeal.close_date),
                col(SalesDeal.stage_id),
                col(SalesDeal.deleted_at),
            ).where(col(SalesDeal.id).in_(ids))
        )
    }
    stages = session.execute(sa_select(col(SalesStage.id), col(SalesStage.kind))).all()
    kinds = {int(stage_id): str(kind) for stage_id, kind in stages}
    moves = session.execute(
        sa_select(col(SalesStageMove.deal_id), col(SalesStageMove.to_stage_id), col(SalesStageMove.at))
        .where(col(SalesStageMove.deal_id).in_(ids))
        .order_by(col(SalesStageMove.id))
    )
    changes = session.execute(
        sa_select(
            col(SalesDealChange.deal_id),
            col(SalesDealChange.field),
            col(SalesDealChange.old_value),
            col(SalesDealChange.new_value),
            col(SalesDealChange.at),
        )
        .where(
            col(SalesDealChange.deal_id).in_(ids),
            col(SalesDealChange.field).in_(("amount_minor", "close_date")),
        )
        .order_by(col(SalesDealChange.id))
    )
    first_move: dict[int, str] = {}
    events: dict[int, list[Event]] = {deal_id: [] for deal_id in deals}
    for deal_id, to_stage_id, at in moves:
        if deal_id not in first_move:
            first_move[deal_id] = kinds[to_stage_id]
        else:
            events[deal_id].append(Event(at, "stage", kinds[to_stage_id]))
    first_amount: dict[int, int] = {}
    first_close: dict[int, date | None] = {}
    for deal_id, name, old_value, new_value, at in changes:
        if name == "amount_minor":
            first_amount.setdefault(deal_id, int(old_value or 0))
            events[deal_id].append(Event(at, "amount", int(new_value or 0)))
        else:
            old = date.fromisoformat(old_value) if old_value else None
            first_close.setdefault(deal_id, old)
            new = date.fromisoformat(new_value) if new_value else None
            events[deal_id].append(Event(at, "close_date", new))
    histories = []
    for deal_id, (_, created_at, amount, close_date, stage_id, deleted_at) in deals.items():
        if deleted_at is not None:
            events[deal_id].append(Event(deleted_at, "removed"))
        histories.append(
            DealHistory(
                created_at=created_at,
                amount=first_amount.get(deal_id, amount),
                close_date=first_close.get(deal_id, close_date),
                status=first_move.get(deal_id, kinds[stage_id]),
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
        _histories(session, tenant, pipeline_id, currency, period.since, period.until),
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
