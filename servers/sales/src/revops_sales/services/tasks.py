"""Tasks on deals. The deal's next step is its open task due soonest (undated last, then oldest);
completing a task records a `task_done` activity, so activity metrics and stall rules see it."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field
from sqlalchemy import case
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_sales.models.deal_work import SalesTask
from revops_sales.models.deals import SalesDeal
from revops_sales.services import activities


class TaskOut(Out):
    id: int = Field(description="Task id.")
    deal_id: int = Field(description="Deal id.")
    title: str = Field(description="What to do.")
    due_date: date | None = Field(description="Due day; null if undated.")
    owner: str | None = Field(description="Who does it.")
    done_at: datetime | None = Field(description="Completed at (UTC); null while open.")
    created_at: datetime = Field(description="Created (UTC).")


def task_out(row: SalesTask) -> TaskOut:
    return TaskOut.model_validate(row)


def _soonest_first() -> tuple[object, ...]:
    undated_last = case((col(SalesTask.due_date).is_(None), 1), else_=0)
    return (undated_last, col(SalesTask.due_date), col(SalesTask.id))


def open_of_deal(session: Session, deal_id: int) -> list[TaskOut]:
    rows = session.exec(
        select(SalesTask)
        .where(SalesTask.deal_id == deal_id, col(SalesTask.done_at).is_(None))
        .order_by(*_soonest_first())  # type: ignore[arg-type]
    )
    return [task_out(r) for r in rows]


def add(
    session: Session,
    tenant: str,
    deal: SalesDeal,
    *,
    title: str,
    due_date: date | None,
    owner: str | None,
    actor: str,
    at: datetime,
) -> TaskOut:
    row = SalesTask(
        tenant=tenant,
        deal_id=deal.id or 0,
        title=title,
        due_date=due_date,
        owner=owner or deal.owner,
        created_by=actor,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return task_out(row)


def complete(
    session: Session, tenant: str, deal: SalesDeal, task_id: int, *, actor: str, at: datetime
) -> TaskOut:
    row = session.get(SalesTask, task_id)
    if row is None or row.deal_id != deal.id or row.tenant != tenant:
        raise NotFound(
            f"Deal {deal.id} has no task {task_id}.", field="task_id", hint="See open_tasks with get_deal."
        )
    if row.done_at is not None:
        raise Conflict(f"Task {task_id} was completed at {row.done_at.isoformat()}.", field="task_id")
    row.done_at = at
    row.done_by = actor
    session.add(row)
    activities.record(
        session,
        tenant,
        kind="task_done",
        occurred_at=at,
        owner=row.owner or actor,
        deal_id=deal.id,
        company_id=deal.company_id,
        subject=row.title,
        source=("sales_task", task_id),
    )
    return task_out(row)


def page(
    session: Session,
    tenant: str,
    *,
    owner: str | None,
    deal_id: int | None,
    done: bool,
    due_by: date | None,
    limit: int,
    cursor: str | None,
) -> Page[TaskOut]:
    """Tasks oldest first (keyset on id), filtered in SQL."""
    query = (
        select(SalesTask)
        .join(SalesDeal, col(SalesDeal.id) == col(SalesTask.deal_id))
        .where(SalesTask.tenant == tenant, col(SalesDeal.deleted_at).is_(None))
        .where(col(SalesTask.done_at).is_not(None) if done else col(SalesTask.done_at).is_(None))
    )
    if owner is not None:
        query = query.where(SalesTask.owner == owner)
    if deal_id is not None:
        query = query.where(SalesTask.deal_id == deal_id)
    if due_by is not None:
        query = query.where(col(SalesTask.due_date) <= due_by)
    return paginate(
        session, query, cursor=cursor, limit=limit, keys=[col(SalesTask.id)], scope="tasks", item=task_out
    )
