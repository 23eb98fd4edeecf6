"""Sales tools: the work on a deal — line items, tasks, competitors, exit criteria — and notes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.db import utcnow
from revops_core.outputs import Out
from revops_core.paging import Page
from revops_core.params import (
    Count,
    Cursor,
    Id,
    IdValue,
    Limit,
    SingleLine,
    Text,
    WholeNumber,
    require,
)
from revops_core.server import Call
from revops_sales.models.deal_work import CompetitorStatus
from revops_sales.params import DealId
from revops_sales.services import competitors, deals, line_items, notes, stage_criteria, tasks
from revops_sales.toolsets import deals as toolset

Action = Literal[
    "add_line_item",
    "remove_line_item",
    "add_task",
    "complete_task",
    "set_competitor",
    "remove_competitor",
    "meet_criteria",
]


class WorkDone(Out):
    deal_id: int = Field(description="Deal id.")
    id: int | None = Field(description="Line item, task or competitor added or changed; null otherwise.")
    amount_minor: int = Field(description="Deal amount after the change, minor units.")
    currency: str = Field(description="Deal currency.")


Person = Annotated[
    str | None,
    Field(min_length=1, max_length=200, description="add_task: default the deal owner."),
    SingleLine,
]


@toolset.tool(tier="write", idempotent=False, title="Work on a deal", target="sales_deal:{deal_id}")
def update_deal_work(
    call: Call,
    deal_id: DealId,
    action: Annotated[Action, Field(description="What to do.")],
    product: Annotated[str | None, Text("add_line_item: product name.")] = None,
    quantity: Annotated[int | None, Count("add_line_item: units.", ge=1, le=10**9)] = None,
    unit_price_minor: Annotated[
        int | None,
        Field(ge=0, le=10**15, description="add_line_item: per unit, minor units."),
        WholeNumber,
    ] = None,
    currency: Annotated[
        str | None,
        Field(pattern=r"^[A-Z]{3}$", description="add_line_item: must be the deal's; omit for it."),
    ] = None,
    discount_bp: Annotated[int, Count("add_line_item: basis points (1250 = 12.5 %).", le=10_000)] = 0,
    line_item_id: Annotated[int | None, Id("line item", see="get_deal", optional="remove_line_item")] = None,
    title: Annotated[str | None, Text("add_task: what to do.", max_length=300)] = None,
    due_date: Annotated[date | None, Field(description="add_task: due day.")] = None,
    owner: Person = None,
    task_id: Annotated[int | None, Id("task", see="get_deal", optional="complete_task")] = None,
    competitor: Annotated[str | None, Text("set_competitor, remove_competitor: name.")] = None,
    competitor_status: Annotated[CompetitorStatus, Field(description="set_competitor.")] = "active",
    competitor_notes: Annotated[str | None, Text("set_competitor: notes.", max_length=2000)] = None,
    criterion_ids: Annotated[
        list[IdValue] | None,
        Field(min_length=1, max_length=50, description="meet_criteria: ids met (see get_deal)."),
    ] = None,
) -> WorkDone:
    """Line items (amount = their sum), tasks, competitors, exit criteria of a deal; get_deal shows all."""
    deal = deals.get(call.db, call.tenant, deal_id)
    now = utcnow()
    changed: int | None = None
    if action == "add_line_item":
        changed = line_items.add(
            call.db,
            deal,
            product=require(product, "product", when="action=add_line_item"),
            quantity=require(quantity, "quantity", when="action=add_line_item"),
            unit_price_minor=require(unit_price_minor, "unit_price_minor", when="action=add_line_item"),
            currency=currency,
            discount_bp=discount_bp,
            actor=call.actor,
            at=now,
        )
    elif action == "remove_line_item":
        item = require(line_item_id, "line_item_id", when="action=remove_line_item")
        line_items.remove(call.db, deal, item, actor=call.actor, at=now)
    elif action == "add_task":
        changed = tasks.add(
            call.db,
            call.tenant,
            deal,
            title=require(title, "title", when="action=add_task"),
            due_date=due_date,
            owner=owner,
            actor=call.actor,
            at=now,
        ).id
    elif action == "complete_task":
        done = require(task_id, "task_id", when="action=complete_task")
        changed = tasks.complete(call.db, call.tenant, deal, done, actor=call.actor, at=now).id
    elif action == "set_competitor":
        name = require(competitor, "competitor", when="action=set_competitor")
        changed = competitors.set_competitor(
            call.db, deal, name=name, status=competitor_status, notes=competitor_notes, at=now
        ).id
    elif action == "remove_competitor":
        competitors.remove(call.db, deal, require(competitor, "competitor", when="action=remove_competitor"))
    else:
        met = require(criterion_ids, "criterion_ids", when="action=meet_criteria")
        stage_criteria.meet(call.db, deal, met, actor=call.actor, at=now)
    if changed is not None:
        call.audit_details["id"] = changed
    return WorkDone(deal_id=deal_id, id=changed, amount_minor=deal.amount_minor, currency=deal.currency)


@toolset.tool(tier="write", idempotent=False, title="Add a note")
def add_note(
    call: Call,
    body: Annotated[str, Text("The note.", max_length=10_000)],
    deal_id: Annotated[int | None, Id("deal", see="list_deals")] = None,
    contact_id: Annotated[int | None, Id("contact", see="search_contacts")] = None,
    company_id: Annotated[int | None, Id("company", see="search_companies")] = None,
) -> notes.NoteOut:
    """Add a note to one deal, contact or company; it is logged as a note activity."""
    note = notes.add(
        call.db,
        call.tenant,
        body=body,
        deal_id=deal_id,
        contact_id=contact_id,
        company_id=company_id,
        author=call.actor,
        at=utcnow(),
    )
    call.target = f"sales_note:{note.id}"
    return note


@toolset.tool(tier="read", title="List notes")
def list_notes(
    call: Call,
    deal_id: Annotated[int | None, Id("deal", see="list_deals")] = None,
    contact_id: Annotated[int | None, Id("contact", see="search_contacts")] = None,
    company_id: Annotated[int | None, Id("company", see="search_companies")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[notes.NoteOut]:
    """Notes of one deal, contact or company, newest first."""
    return notes.page(
        call.db,
        call.tenant,
        deal_id=deal_id,
        contact_id=contact_id,
        company_id=company_id,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="read", title="List tasks")
def list_tasks(
    call: Call,
    owner: Annotated[
        str | None, Field(min_length=1, max_length=200, description="Only this rep's."), SingleLine
    ] = None,
    deal_id: Annotated[int | None, Id("deal", see="list_deals", optional="omit for every deal")] = None,
    done: Annotated[bool, Field(description="Completed instead of open.")] = False,
    due_by: Annotated[date | None, Field(description="Due on or before.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[tasks.TaskOut]:
    """Tasks on deals (open by default), oldest first, by owner, deal and due day."""
    return tasks.page(
        call.db,
        call.tenant,
        owner=owner,
        deal_id=deal_id,
        done=done,
        due_by=due_by,
        limit=limit,
        cursor=cursor,
    )
