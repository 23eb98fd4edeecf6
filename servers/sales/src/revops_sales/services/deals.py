"""Deals: create, update, move between stages (every move recorded, exit criteria enforced), read one
with its line items, tasks, competitors and notes, page many."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import NotFound, ValidationFailed
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_core.records import live
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import (
    competitors,
    line_items,
    notes,
    pipelines,
    sales_config,
    stage_criteria,
    tasks,
)
from revops_sales.services.competitors import CompetitorOut
from revops_sales.services.line_items import LineItemOut
from revops_sales.services.notes import NoteOut
from revops_sales.services.stage_criteria import ChecklistItem
from revops_sales.services.tasks import TaskOut


class DealOut(Out):
    id: int = Field(description="Deal id.")
    name: str = Field(description="Deal name.")
    pipeline_id: int = Field(description="Pipeline id.")
    stage_id: int = Field(description="Current stage id.")
    stage: str = Field(description="Current stage name.")
    status: str = Field(description="open, won or lost (the kind of the current stage).")
    probability_pct: int = Field(description="Configured win probability of the current stage, percent.")
    owner: str | None = Field(description="Rep who owns the deal.")
    company_id: int | None = Field(description="Shared company id, if linked.")
    amount_minor: int = Field(description="Amount in minor units.")
    currency: str = Field(description="ISO 4217 currency.")
    close_date: date | None = Field(description="Expected (or actual) close date.")
    forecast_category: str = Field(
        description="pipeline, best_case, most_likely, commit, omitted; closed once won."
    )
    created_at: datetime = Field(description="Created (UTC).")
    stage_entered_at: datetime = Field(description="Entered the current stage (UTC).")
    closed_at: datetime | None = Field(description="Closed won or lost (UTC).")


class StageMoveOut(Out):
    from_stage_id: int | None = Field(description="Stage left (null when the deal was created).")
    to_stage_id: int = Field(description="Stage entered.")
    actor: str = Field(description="Who moved it.")
    at: datetime = Field(description="When (UTC).")


class DealDetail(DealOut):
    history: list[StageMoveOut] = Field(description="Every stage move, oldest first.")
    line_items: list[LineItemOut] = Field(description="Products; while any exist the amount is their sum.")
    next_step: TaskOut | None = Field(description="Open task due soonest; null if none.")
    open_tasks: list[TaskOut] = Field(description="Open tasks, soonest due first.")
    competitors: list[CompetitorOut] = Field(description="Competitors on the deal.")
    recent_notes: list[NoteOut] = Field(description="Newest notes (up to 5).")
    exit_criteria: list[ChecklistItem] = Field(description="The current stage's checklist and what is met.")


def deal_out(deal: SalesDeal, stage: SalesStage) -> DealOut:
    category = "closed" if stage.kind == "won" else deal.forecast_category
    return DealOut.model_validate(
        {
            **deal.model_dump(),
            "stage": stage.name,
            "status": stage.kind,
            "probability_pct": stage.probability_pct,
            "forecast_category": category,
        }
    )


_DEAL_FIELDS = tuple(
    name for name in DealOut.model_fields if name not in ("stage", "status", "probability_pct")
)


def deal_columns() -> list[Any]:
    """The columns a DealOut is built from (select them joined to SalesStage): a read of many
    deals fetches plain rows, not ORM objects."""
    return [
        *(getattr(SalesDeal, name) for name in _DEAL_FIELDS),
        col(SalesStage.name).label("stage"),
        col(SalesStage.kind).label("status"),
        col(SalesStage.probability_pct),
    ]


def deal_out_row(row: Mapping[str, Any]) -> DealOut:
    """A DealOut from a row of `deal_columns()` (the same figures as `deal_out`)."""
    values = {name: row[name] for name in DealOut.model_fields}
    if values["status"] == "won":
        values["forecast_category"] = "closed"
    return DealOut.model_validate(values)


def get(session: Session, tenant: str, deal_id: int) -> SalesDeal:
    return live(session, SalesDeal, deal_id, tenant=tenant, field="deal_id", what="deal", see="list_deals")


def _record_move(session: Session, deal: SalesDeal, from_stage: int | None, actor: str, at: datetime) -> None:
    session.add(
        SalesStageMove(
            deal_id=deal.id or 0, from_stage_id=from_stage, to_stage_id=deal.stage_id, actor=actor, at=at
        )
    )


def create(
    session: Session,
    tenant: str,
    actor: str,
    *,
    pipeline_id: int,
    name: str,
    amount_minor: int,
    currency: str,
    stage_id: int | None,
    owner: str | None,
    close_date: date | None,
    company_id: int | None,
    forecast_category: str | None = None,
) -> DealOut:
    pipelines.get_pipeline(session, tenant, pipeline_id)
    stage = (
        pipelines.stage_in(session, pipeline_id, stage_id)
        if stage_id is not None
        else pipelines.first_open_stage(session, pipeline_id)
    )
    if company_id is not None:
        from revops_core.models import CoreCompany

        if session.get(CoreCompany, company_id) is None:
            raise NotFound(f"No company with id {company_id}.", field="company_id")
    now = utcnow()
    deal = SalesDeal(
        tenant=tenant,
        pipeline_id=pipeline_id,
        stage_id=stage.id or 0,
        name=name,
        owner=owner,
        amount_minor=amount_minor,
        currency=currency,
        close_date=close_date,
        company_id=company_id,
        # Not given: the stage's configured default category, else "pipeline".
        forecast_category=forecast_category
        or sales_config.default_category(session, stage.id or 0)
        or "pipeline",
        created_at=now,
        updated_at=now,
        stage_entered_at=now,
        closed_at=now if stage.kind != "open" else None,
    )
    session.add(deal)
    session.flush()
    _record_move(session, deal, None, actor, now)
    session.flush()
    return deal_out(deal, stage)


# Changes kept as history: forecasts, slipping and waterfalls are computed from them.
TRACKED_FIELDS = ("amount_minor", "close_date", "forecast_category")


def update(
    session: Session, tenant: str, actor: str, deal_id: int, *, changes: Mapping[str, object]
) -> DealOut:
    wanted = {k: v for k, v in changes.items() if v is not None}
    if not wanted:
        raise ValidationFailed(
            "Nothing to change.",
            field="name",
            hint="Pass at least one of name, amount_minor, owner, close_date, forecast_category.",
        )
    deal = get(session, tenant, deal_id)
    if "amount_minor" in wanted and line_items.count(session, deal_id):
        raise ValidationFailed(
            f"Deal {deal_id} has line items: its amount is their sum.",
            field="amount_minor",
            hint="Change the line items with update_deal_work instead.",
        )
    now = utcnow()
    for attr, value in wanted.items():
        _set_tracked(session, deal, attr, value, actor, now)
    deal.updated_at = now
    session.add(deal)
    session.flush()
    return deal_out(deal, pipelines.stage_in(session, deal.pipeline_id, deal.stage_id))


def _set_tracked(
    session: Session, deal: SalesDeal, attr: str, value: object, actor: str, at: datetime
) -> None:
    old = getattr(deal, attr)
    if attr in TRACKED_FIELDS and old != value:
        session.add(
            SalesDealChange(
                deal_id=deal.id or 0,
                field=attr,
                old_value=None if old is None else str(old),
                new_value=str(value),
                actor=actor,
                at=at,
            )
        )
    setattr(deal, attr, value)


def move(
    session: Session,
    tenant: str,
    actor: str,
    deal_id: int,
    stage_id: int,
    *,
    override_reason: str | None = None,
) -> DealOut:
    deal = get(session, tenant, deal_id)
    stage = pipelines.stage_in(session, deal.pipeline_id, stage_id)
    if stage.id == deal.stage_id:
        raise ValidationFailed(f"Deal {deal_id} is already in stage {stage.name!r}.", field="stage_id")
    now = utcnow()
    current = pipelines.stage_in(session, deal.pipeline_id, deal.stage_id)
    stage_criteria.check_move(
        session, deal, current, stage, actor=actor, at=now, override_reason=override_reason
    )
    category = sales_config.default_category(session, stage.id or 0)
    if category is not None and stage.kind == "open":
        _set_tracked(session, deal, "forecast_category", category, actor, now)
    previous = deal.stage_id
    deal.stage_id = stage.id or 0
    deal.stage_entered_at = now
    deal.updated_at = now
    deal.closed_at = now if stage.kind != "open" else None
    session.add(deal)
    _record_move(session, deal, previous, actor, now)
    session.flush()
    return deal_out(deal, stage)


def detail(session: Session, tenant: str, deal_id: int) -> DealDetail:
    deal = get(session, tenant, deal_id)
    stage = pipelines.stage_in(session, deal.pipeline_id, deal.stage_id)
    moves = session.exec(
        select(SalesStageMove).where(SalesStageMove.deal_id == deal_id).order_by(col(SalesStageMove.id))
    ).all()
    open_tasks = tasks.open_of_deal(session, deal_id)
    return DealDetail.model_validate(
        {
            **deal_out(deal, stage).model_dump(),
            "history": [StageMoveOut.model_validate(m) for m in moves],
            "line_items": line_items.of_deal(session, deal_id),
            "next_step": open_tasks[0] if open_tasks else None,
            "open_tasks": open_tasks,
            "competitors": competitors.of_deal(session, deal_id),
            "recent_notes": notes.recent_of_deal(session, tenant, deal_id),
            "exit_criteria": stage_criteria.checklist(session, deal_id, deal.stage_id),
        }
    )


def page(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    owner: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[DealOut]:
    # Plain rows of the DealOut columns; with ix_sales_deal_live(_pg) the page walks the index in id
    # order and the total is counted from the index alone.
    query = (
        select(*deal_columns())
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(SalesDeal.tenant == tenant, col(SalesDeal.deleted_at).is_(None))
    )
    if pipeline_id is not None:
        query = query.where(SalesDeal.pipeline_id == pipeline_id)
    if owner is not None:
        query = query.where(SalesDeal.owner == owner)
    if status is not None:
        query = query.where(SalesStage.kind == status)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(SalesDeal.id)],
        scope="deals",
        item=lambda row: deal_out_row(row._mapping),
    )
